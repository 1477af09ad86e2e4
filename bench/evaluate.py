"""The one evaluator: turns a model's ranked lists or generated texts into metrics.

A generative model (beam search) and a scoring model (argsort) are judged by the same code.
Returned ids outside the allowed set (all items, or the query's 100 candidates) are counted in
``invalid_rate`` and the top 10 is taken over the valid ones only (the official P5/VIP5 scripts
drop them silently).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data import BenchData
from bench.metrics import rank_metrics, rating_metrics, target_ranks, text_metrics
from bench.model import has_hook
from bench.significance import rouge_l_per_record
from bench.tasks import get_task

TOP_K = 10


@dataclass
class Evaluation:
    metrics: dict[str, float]
    ranks: np.ndarray | None = None  # per query: 0-based target rank, -1 = miss (ranking tasks)
    texts: list[str] | None = None  # generated explanations (explanation task)
    scores: np.ndarray | None = None  # per record sentence-level ROUGE-L F1, % (explanation, when per_query)


def evaluate(model, data: BenchData, task: str, split: str, variant: str | None = None, limit: int | None = None,
             per_query: bool = False) -> Evaluation:
    """Metrics of `model` on `split`. `limit`: a fixed seeded subset of that many queries (used for
    per-epoch validation of slow generative models; test evaluation always uses every query).
    `per_query`: also score each explanation on its own (for significance tests; ranking tasks
    always return per-query ranks). The task's evaluator comes from the task registry."""
    return get_task(task).evaluate(model, data, split, variant, limit, per_query)


def _subset(n: int, limit: int | None) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(12345).choice(n, size=limit, replace=False))


def _variant_kwargs(variant):
    return {} if variant is None else {"variant": variant}


def evaluate_ranker(model, data: BenchData, task: str, split: str, variant: str | None = None,
                    limit: int | None = None, per_query: bool = False) -> Evaluation:
    """Ranked lists of item ids, one per user (`per_query` is moot: ranks are always per user)."""
    keep = _subset(data.n_users, limit)
    all_queries = data.rank_queries(task, split)
    queries = [all_queries[i] for i in keep]
    targets = data.rank_targets(split)[keep]
    ranked = model.rank(queries, TOP_K, **_variant_kwargs(variant))
    if len(ranked) != len(queries):
        raise RuntimeError(f"model returned {len(ranked)} lists for {len(queries)} queries")
    cleaned, n_invalid, n_total = [], 0, 0
    for q, lst in zip(queries, ranked, strict=True):
        lst = [int(i) for i in lst]
        if q.candidates is not None:
            valid = set(q.candidates.tolist())
            keep = [i for i in lst if i in valid]
        else:  # an excluded item (the history, `RankQuery.exclude`) is invalid, like an unknown id
            banned = set() if q.exclude is None else set(q.exclude.tolist())
            keep = [i for i in lst if 0 <= i < data.n_items and i not in banned]
        n_invalid += len(lst) - len(keep)
        n_total += len(lst)
        cleaned.append(keep[:TOP_K])
    ranks = target_ranks(cleaned, targets)
    metrics = rank_metrics(ranks)
    metrics["invalid_rate"] = n_invalid / max(n_total, 1)
    return Evaluation(metrics, ranks=ranks)


def evaluate_explainer(model, data: BenchData, task: str, split: str, variant: str | None = None,
                       limit: int | None = None, per_query: bool = False) -> Evaluation:
    """Generated texts, one per review record, scored against the record's explanation."""
    all_records, all_queries = data.review_split(split), data.explain_queries(split)
    keep = _subset(len(all_records), limit)
    records = [all_records[i] for i in keep]
    queries = [all_queries[i] for i in keep]
    texts = model.explain(queries, **_variant_kwargs(variant))
    if len(texts) != len(queries):
        raise RuntimeError(f"model returned {len(texts)} explanations for {len(queries)} records")
    refs = [r.explanation for r in records]
    metrics = text_metrics(texts, refs)
    if has_hook(model, "predict_ratings"):
        metrics |= rating_metrics(model.predict_ratings(queries), [r.rating for r in records])
    scores = None
    if per_query:
        scores = rouge_l_per_record(texts, refs)
    return Evaluation(metrics, texts=list(texts), scores=scores)
