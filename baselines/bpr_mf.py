"""BPR-MF: matrix factorisation trained with the Bayesian personalised ranking loss.

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.
Trained with the `implicit` library (CPU; its CUDA kernels when built with CUDA), one
`implicit` iteration per epoch so that the shared loop validates and early-stops.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data import BenchData
from bench.io import atomic_write_npy
from bench.model import rank_by_scores
from bench.registry import register_model


@dataclass
class BPRMFConfig:
    factors: int = 64
    lr: float = 0.1  # implicit's default 0.01 needs several hundred iterations on Beauty
    regularization: float = 0.1  # mattered most on Beauty (validation search 0.01-0.3)
    epochs: int = 300  # one implicit iteration each
    patience: int = 20  # validation is noisy in the first epochs (the item-bias phase)
    # implicit's SGD threads. 1 (the default) is deterministic: the same seed gives the same metrics;
    # 0 = all cores, faster, but its lock-free (hogwild) updates then differ from run to run
    threads: int = 1


@register_model("bpr_mf", tasks={"direct"}, config=BPRMFConfig)
class BPRMF:
    """BPR-MF (Rendle et al., UAI 2009) through the `implicit` library."""

    # regularization mattered most on Beauty; the learning rate decides how many epochs it takes
    TUNE_GRID = {"regularization": [0.03, 0.1, 0.3], "lr": [0.05, 0.1]}

    def __init__(self, cfg: BPRMFConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        import implicit

        self.cfg, self.data, self.seed = cfg, data, seed
        use_gpu = device.startswith("cuda") and implicit.gpu.HAS_CUDA
        if device.startswith("cuda") and not use_gpu:
            print("[bpr_mf] implicit was built without CUDA: training on CPU", file=sys.stderr)
        self.model = implicit.bpr.BayesianPersonalizedRanking(
            factors=cfg.factors, learning_rate=cfg.lr, regularization=cfg.regularization, iterations=1,
            num_threads=cfg.threads, random_state=seed, use_gpu=use_gpu,
        )
        self.user_f = np.zeros((data.n_users, cfg.factors + 1), np.float32)  # implicit adds a bias column
        self.item_f = np.zeros((data.n_items, cfg.factors + 1), np.float32)

    def fit(self, log) -> None:
        matrix = self.data.train_matrix()
        for epoch in log.epochs(self, max_epochs=self.cfg.epochs, patience=self.cfg.patience):
            # a fresh sampling seed each epoch (implicit re-seeds from random_state on every fit call)
            self.model.random_state = self.seed * 100_003 + epoch
            self.model.fit(matrix, show_progress=False)  # continues from the current factors
            self._pull()

    def record_extras(self, task: str) -> dict:
        """The threads implicit really trained with (the record's torch_threads is torch's, unused here)."""
        return {"model_threads": self.threads_used, "deterministic": self.threads_used == 1 or self.model_on_gpu}

    @property
    def model_on_gpu(self) -> bool:
        return not isinstance(getattr(self.model, "item_factors", None), (np.ndarray, type(None)))

    @property
    def threads_used(self) -> int:
        """`threads`, or for 0 OpenMP's default: OMP_NUM_THREADS when set, else every core this process may use."""
        if self.cfg.threads > 0:
            return self.cfg.threads
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        if env.isdigit() and int(env) > 0:
            return int(env)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def _pull(self) -> None:
        m = (
            self.model.to_cpu()
            if hasattr(self.model, "to_cpu") and not isinstance(self.model.item_factors, np.ndarray)
            else self.model
        )
        self.user_f, self.item_f = np.asarray(m.user_factors), np.asarray(m.item_factors)

    def rank(self, queries, k: int) -> list[list[int]]:
        def scores(batch, cands):
            u = self.user_f[[q.user for q in batch]]  # [B, f+1]
            if cands is None:
                return u @ self.item_f.T  # [B, n_items]
            return np.einsum("bf,bcf->bc", u, self.item_f[cands])  # [B, 100]: only the candidates

        return rank_by_scores(queries, k, scores)

    def id_embeddings(self) -> dict[str, np.ndarray]:
        """The learned factors (bias column included), for bench diagnose's hidden-taste probe."""
        return {"users": self.user_f, "items": self.item_f}

    def save(self, path: Path) -> None:
        atomic_write_npy(Path(path) / "user_factors.npy", self.user_f)
        atomic_write_npy(Path(path) / "item_factors.npy", self.item_f)

    def load(self, path: Path) -> None:
        self.user_f = np.load(Path(path) / "user_factors.npy")
        self.item_f = np.load(Path(path) / "item_factors.npy")
        # keep implicit's own factors in step so that further training continues from here
        if isinstance(getattr(self.model, "item_factors", None), np.ndarray):
            self.model.user_factors, self.model.item_factors = self.user_f.copy(), self.item_f.copy()

    def save_training_state(self, path: Path) -> None:
        """For exact resume (FitLog, after every epoch): the factors are implicit's whole training state,
        since every epoch re-seeds its sampler from the epoch number."""
        self.save(path)

    def load_training_state(self, path: Path) -> None:
        self.load(path)
        # a fresh implicit model holds no factors and would draw new ones: hand it these to continue from
        if self.model.item_factors is None:
            user_f, item_f = self.user_f.copy(), self.item_f.copy()
            if type(self.model).__module__.startswith("implicit.gpu"):
                import implicit.gpu

                user_f, item_f = implicit.gpu.Matrix(user_f), implicit.gpu.Matrix(item_f)
            self.model.user_factors, self.model.item_factors = user_f, item_f

    def num_params(self) -> tuple[int, int]:
        n = self.user_f.size + self.item_f.size
        return n, n
