"""What both sides of a cross-check share: the dataset, running one of our models through its
own fit/rank code, and the test metrics, always from `bench.evaluate` (the benchmark's one
evaluator, metrics from `bench.metrics`), so both sides are judged by the same code on the same
queries: sequential = leave-one-out, full ranking over every item, history items included as
RecBole's sequential evaluator does (run_reference.py turns the benchmark's history exclusion
off); direct = the dataset's stored 100-candidate lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bench.config import build_config
from bench.data import BenchData
from bench.evaluate import evaluate
from bench.metrics import per_query_rank_metrics
from bench.model import rank_by_scores
from bench.train import FitLog, seed_everything


@dataclass
class RunResult:
    """One fitted model on the test split."""

    metrics: dict[str, float]  # bench.evaluate's test metrics
    ranks: np.ndarray  # [n_test] 0-based rank of each test target in the top 10, -1 = miss
    epochs: int  # epochs trained (fine-tuning epochs for S3-Rec)
    best_epoch: int | None  # 1-based epoch whose model was tested (early stopping), else the last
    fit_s: float
    extra: dict = field(default_factory=dict)


class ScoreTable:
    """A fitted external model seen through our Ranker interface: its scores for every (user,
    item) in our ids, [n_users, n_items], ranked by `bench.model.rank_by_scores` like our own
    scoring models (ties go to the lower item id on both sides)."""

    def __init__(self, scores: np.ndarray):
        self.scores = scores

    def rank(self, queries, k: int) -> list[list[int]]:
        return rank_by_scores(queries, k, lambda batch, cands: self.scores[[q.user for q in batch]])


def test_result(model, data: BenchData, task: str, epochs: int, best_epoch: int | None, fit_s: float,
                extra: dict | None = None) -> RunResult:
    ev = evaluate(model, data, task, "test")
    return RunResult(ev.metrics, ev.ranks, epochs, best_epoch, fit_s, extra or {})


def run_ours(cls, config_cls, overrides: dict, data: BenchData, task: str, seed: int, early_stop: bool) -> RunResult:
    """Fit one of our models the way the benchmark runner does and test it. early_stop: validation
    NDCG@10 after every epoch, best epoch restored (the shared FitLog); otherwise every epoch is
    trained and the last one tested (for a reference library that has no validation hook)."""
    cfg = build_config(config_cls, overrides)
    seed_everything(seed)
    model = cls(cfg, data, task=task, device="cpu", seed=seed)
    validate = (lambda: evaluate(model, data, task, "val").metrics) if early_stop else None
    log = FitLog(validate, "ndcg@10", name=f"ours:{cls.__name__}", verbose=False)
    t0 = time.perf_counter()
    model.fit(log)
    fit_s = time.perf_counter() - t0
    return test_result(model, data, task, len(log.epoch_times), log.best_epoch, fit_s)


def paired_difference(ours: list[np.ndarray], ref: list[np.ndarray], metric: str, seed: int = 0,
                      n_boot: int = 2000) -> dict[str, float]:
    """Ours minus reference for `metric`, per test query averaged over seeds, with a 95% paired
    bootstrap interval over the test queries (how much of a gap the 600 queries alone explain)."""
    a = np.mean([per_query_rank_metrics(r, metric) for r in ours], 0)  # [n_test]
    b = np.mean([per_query_rank_metrics(r, metric) for r in ref], 0)
    d = a - b
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"diff": float(d.mean()), "ci95_lo": float(lo), "ci95_hi": float(hi)}
