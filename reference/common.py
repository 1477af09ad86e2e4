"""What both sides of a cross-check share: the dataset, the two ranking protocols, metrics
from scores or ranked lists (always through `bench.metrics`, so both sides are judged by the
same code), and running one of our models through its own fit/rank code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bench.config import build_config
from bench.data import BenchData, RankQuery
from bench.evaluate import TOP_K, evaluate
from bench.metrics import rank_metrics, target_ranks
from bench.registry import get_model
from bench.train import FitLog, seed_everything

# sequential task, full ranking over every item:
#   "all": history items stay in the ranking (what our evaluator and RecBole 1.2.1 do for
#          sequential models: its FullSortEvalDataLoader masks the history only for general
#          recommenders, never for sequential ones)
#   "excl": the user's history items are removed before taking the top 10
PROTOCOLS = ("all", "excl")


@dataclass
class RunResult:
    """One fitted model on the test split: metrics per protocol, plus how training went."""

    metrics: dict[str, dict[str, float]]  # protocol -> metric -> value
    epochs: int  # epochs trained (fine-tuning epochs for S3-Rec)
    best_epoch: int | None  # the epoch whose model was tested (None: the last one)
    fit_s: float
    extra: dict = field(default_factory=dict)


def test_queries(data: BenchData) -> tuple[list[RankQuery], np.ndarray]:
    return data.rank_queries("sequential", "test"), data.rank_targets("test")


def metrics_from_scores(scores: np.ndarray, targets: np.ndarray, histories: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """scores [n, n_items] (our item ids), one row per test user -> metrics for both protocols.
    A target's rank is the number of items scored strictly higher (ties: the optimistic end)."""
    out = {}
    for protocol in PROTOCOLS:
        s = scores.astype(np.float64, copy=True)
        if protocol == "excl":
            for n, h in enumerate(histories):
                s[n, h] = -np.inf
        t = s[np.arange(len(s)), targets][:, None]  # [n, 1]
        ranks = (s > t).sum(1)  # [n] 0-based
        out[protocol] = rank_metrics(np.where(ranks < TOP_K, ranks, -1))
    return out


def metrics_from_lists(ranked: list[list[int]], queries: list[RankQuery], targets: np.ndarray) -> dict[str, dict[str, float]]:
    """Top lists long enough to hold 10 non-history items -> metrics for both protocols."""
    out = {}
    for protocol in PROTOCOLS:
        lists = []
        for q, lst in zip(queries, ranked, strict=True):
            if protocol == "excl":
                hist = set(q.history.tolist())
                lst = [i for i in lst if i not in hist]
            lists.append(lst[:TOP_K])
        out[protocol] = rank_metrics(target_ranks(lists, targets))
    return out


def build_ours(name: str, overrides: dict, data: BenchData, task: str, seed: int):
    spec = get_model(name)
    cfg = build_config(spec.config, overrides)
    seed_everything(seed)
    return spec.cls(cfg, data, task=task, device="cpu", seed=seed)


def run_ours_sequential(name: str, overrides: dict, data: BenchData, seed: int) -> RunResult:
    """Fit one of our sequential models with validation-NDCG@10 early stopping (the shared
    FitLog: the best epoch is restored) and test it under both protocols."""
    model = build_ours(name, overrides, data, "sequential", seed)
    log = FitLog(lambda: evaluate(model, data, "sequential", "val").metrics, "ndcg@10", name=f"ours:{name}", verbose=False)
    t0 = time.perf_counter()
    model.fit(log)
    fit_s = time.perf_counter() - t0
    queries, targets = test_queries(data)
    longest = max(len(q.history) for q in queries)
    ranked = model.rank(queries, TOP_K + longest)  # enough for the top 10 once history items are dropped
    return RunResult(metrics_from_lists(ranked, queries, targets), len(log.epoch_times), log.best_epoch, fit_s)


def direct_metrics_from_scores(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """scores [n, 100] of each user's candidate list, targets [n] = the column of the target."""
    t = scores[np.arange(len(scores)), targets][:, None]
    ranks = (scores > t).sum(1)
    return rank_metrics(np.where(ranks < TOP_K, ranks, -1))
