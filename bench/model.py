"""What every registered model provides, and small helpers shared by scoring models.

A model is constructed as ``cls(cfg, data, task=..., device=..., seed=...)`` (it may build its
networks from the data's sizes there), trained by ``fit(log)``, and evaluated through
``rank`` (sequential, direct) or ``explain`` (explanation). ``save``/``load`` round-trip its
state into a freshly constructed instance with the same config and data. Everything else a
model may declare is optional and listed in OPTIONAL_ATTRIBUTES and OPTIONAL_METHODS below.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bench.data import BenchData, ExplainQuery, RankQuery
from bench.train import FitLog


@runtime_checkable
class Recommender(Protocol):
    def __init__(self, cfg, data: BenchData, *, task: str, device: str, seed: int) -> None: ...
    def fit(self, log: FitLog) -> None: ...
    def save(self, path: Path) -> None: ...
    def load(self, path: Path) -> None: ...
    def num_params(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        ...


class Ranker(Recommender, Protocol):
    def rank(self, queries: Sequence[RankQuery], k: int) -> list[list[int]]: ...


class Explainer(Recommender, Protocol):
    def explain(self, queries: Sequence[ExplainQuery]) -> list[str]: ...


# ------------------------------------------------------------------------------ optional hooks
# The optional part of the protocol, in one place. A model class may set any of these class
# attributes (a class that leaves one out gets its default) and define any of these methods.
# Callers read the attributes through bench.registry.ModelSpec (spec.requires, spec.run_cost,
# spec.dataset_defaults(dataset), ...) and ask for the methods with has_hook / variants_of, so
# a new hook is added here first; register_model refuses an upper-case class attribute close to
# one of these names (a misspelt hook would otherwise silently leave the default in force).

@dataclass(frozen=True)
class Hook:
    default: Any
    doc: str


OPTIONAL_ATTRIBUTES: dict[str, Hook] = {
    "REQUIRES": Hook((), "what every dataset must have beyond sequences, any of attributes, features, "
                         "reviews, images: bench run leaves the job out (with the fix), not failing in it"),
    "REQUIRES_IF": Hook({}, "{need: config field}: a need that holds only while that field is set, e.g. "
                            "{'features': 'image_tokens'} (VIP5 with image tokens)"),
    "DATASET_DEFAULTS": Hook({}, "{dataset: {config field: value}}: the model's settings on that dataset; "
                                 "bench tune's choice and --set win (keys checked at registration)"),
    "TUNE_GRID": Hook(None, "{config field: [values]}: bench tune's grid when no --grid is given"),
    "RUN_COST": Hook(1, "a job's relative length: the longer jobs of a task start first side by side"),
    "SHARED_TRAININGS": Hook((), "names of the cached trainings a job may run first (VIP5: its P5 backbone); "
                                 "a job waits while another running job trains one of them"),
    "DISTRIBUTED": Hook(False, "trains under torchrun with DistributedDataParallel (other models are "
                               "refused there)"),
    "CONTRACT_OVERRIDES": Hook({}, "cheaper config values for tests/test_contract.py (tiny backbone, "
                                   "few beams)"),
}

OPTIONAL_METHODS: dict[str, str] = {
    "variants": "variants(task) -> list[str]: the prompt variants evaluated, one record each "
                "(default: [None])",
    "record_extras": "record_extras(task) -> dict: fields added to the job's records (P5/VIP5: "
                     "decoding, vocabulary)",
    "predict_ratings": "predict_ratings(queries) -> list[float]: an explainer's ratings, scored by "
                       "RMSE and MAE",
    "id_embeddings": "id_embeddings() -> {'users': [n_users, d], 'items': [n_items, d]} (either may be absent): "
                     "the learned id vectors, for bench diagnose's hidden-taste probe (bench/studies/taste_probe.py)",
    "save_training_state": "save_training_state(path) and load_training_state(path): exact resume, "
                           "FitLog saves after every epoch (bench/train.py; TrainingCheckpoint below "
                           "implements both)",
}


def model_attribute(cls: type, name: str) -> Any:
    """The model class's optional attribute `name` (a key of OPTIONAL_ATTRIBUTES), or its default."""
    return getattr(cls, name, OPTIONAL_ATTRIBUTES[name].default)


def has_hook(model, name: str) -> bool:
    """Whether `model` defines the optional method `name` (a key of OPTIONAL_METHODS)."""
    if name not in OPTIONAL_METHODS:  # a caller's typo would read as "never defined"
        raise KeyError(f"{name!r} is not an optional model method; declared: {', '.join(OPTIONAL_METHODS)}")
    return hasattr(model, name)


def variants_of(model, task: str) -> list:
    """The prompt variants to evaluate `model` with on `task`: its `variants(task)`, else one (None)."""
    return list(model.variants(task)) if has_hook(model, "variants") else [None]


def torch_param_counts(*modules) -> tuple[int, int]:
    trainable = sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
    total = sum(p.numel() for m in modules for p in m.parameters())
    return trainable, total


class TorchNetState:
    """save / load / num_params for a model whose whole state is the torch module `self.net`
    (on `self.device`): one state-dict file, written atomically."""

    STATE_FILE = "net.pt"

    def save(self, path: Path) -> None:
        from bench.io import atomic_torch_save

        atomic_torch_save(Path(path) / self.STATE_FILE, self.net.state_dict())

    def load(self, path: Path) -> None:
        import torch

        state = torch.load(Path(path) / self.STATE_FILE, map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)

    def num_params(self) -> tuple[int, int]:
        return torch_param_counts(self.net)


class TrainingCheckpoint:
    """save_training_state / load_training_state for exact resume (FitLog calls them after every
    epoch, bench/train.py): the module `self.net`, whatever `fit` put in `self._train_state`
    before its epoch loop ({"opt": optimizer, "sched": schedule, ...}: anything with
    state_dict/load_state_dict) and the model's own NumPy generator `self.rng` (batch order,
    negatives), if it has one. The global RNGs (Python, NumPy, torch) are FitLog's to keep.
    One file of tensors and JSON text, written atomically: it loads with weights_only=True."""

    TRAINING_STATE_FILE = "state.pt"

    def save_training_state(self, path: Path) -> None:
        from bench.io import atomic_torch_save

        state = {"net": self.net.state_dict()} | {k: v.state_dict() for k, v in self._train_state.items()}
        rng = getattr(self, "rng", None)
        if isinstance(rng, np.random.Generator):
            state["rng"] = json.dumps(rng.bit_generator.state)  # a 128-bit PCG64 state: JSON keeps big ints exact
        atomic_torch_save(Path(path) / self.TRAINING_STATE_FILE, state)

    def load_training_state(self, path: Path) -> None:
        import torch

        state = torch.load(Path(path) / self.TRAINING_STATE_FILE, map_location=self.device, weights_only=True)
        self.net.load_state_dict(state["net"])
        for k, v in self._train_state.items():
            v.load_state_dict(state[k])
        if "rng" in state:
            self.rng.bit_generator.state = json.loads(state["rng"])


def rank_by_scores(
    queries: Sequence[RankQuery],
    k: int,
    score_fn: Callable[[Sequence[RankQuery], np.ndarray | None], np.ndarray],
    batch_size: int = 512,
) -> list[list[int]]:
    """Top-k item ids per query from a scorer (higher = better).

    ``score_fn(batch, cands)`` gets ``cands = None`` for full ranking over all items and must
    return [B, n_items]; for the direct task it gets the candidates [B, 100] and may return
    either their scores [B, 100] (cheap) or all items' scores [B, n_items] (gathered here).
    A query's `exclude` items never enter its list.
    """
    out: list[list[int]] = []
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        cands = None if batch[0].candidates is None else np.stack([q.candidates for q in batch])  # [B, 100]
        scores = np.array(score_fn(batch, cands), dtype=np.float64)  # a copy: masked below
        if cands is None:
            for b, q in enumerate(batch):
                if q.exclude is not None and len(q.exclude):
                    scores[b, q.exclude] = -np.inf
            kk = min(k, scores.shape[1])
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]  # [B, k] unordered
            order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
            out.extend(np.take_along_axis(top, order, 1).tolist())
        else:
            if scores.shape[1] != cands.shape[1]:
                scores = np.take_along_axis(scores, cands, 1)  # [B, 100]
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            out.extend(np.take_along_axis(cands, order, 1).tolist())
    return out
