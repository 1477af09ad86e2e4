"""Per-query values in run records, and the paired significance test the tables mark with a dagger.

Records keep, for the test split, one value per query so that two models can be compared
user by user (a paired test) long after the runs:

* ranking tasks: ``per_query = {"n": N, "order": "user id", "ranks": "0-3-9..."}``, one
  character per user: ``0``-``9`` = 0-based rank of the target in the top-10 list, ``-`` =
  not in the top 10 (rank -1). A string, not a JSON list, because records are written with
  one JSON value per line and a 22k-user list would be 22k lines;
* explanation: ``per_query = {"n": N, "order": "test records", "rouge_l": "12.5 0 33.33 ..."}``,
  the sentence-level ROUGE-L F1 (percent, 2 decimals) of each test record. Corpus BLEU-4 does
  not decompose into per-record terms, and sentence BLEU-4 is zero for most short sentences
  without smoothing; ROUGE-L is what the table's ROUGE-L column averages.

The test: a two-sided paired t-test over users (records) with ``scipy.stats.ttest_rel``, each
user's value first averaged over the model's seeds. A t-test rather than Wilcoxon's
signed-rank test because per-user NDCG is mostly zeros and ties, where the signed-rank test
discards the ties and tests a median rather than the mean the table shows; the t-test on the
mean agrees closely with a randomisation test at these sample sizes (Smucker, Allan and
Carterette, CIKM 2007).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics import RANK_METRICS, per_query_rank_metrics

ALPHA = 0.05
TEST_NAME = ("two-sided paired t-test (scipy.stats.ttest_rel) over the test queries (users; explanation records), "
             "each query's value averaged over the model's seeds")
TEXT_PER_QUERY = {"rouge-l": "rouge_l"}  # table metric -> per_query key


def encode_ranks(ranks: np.ndarray) -> str:
    ranks = np.asarray(ranks)
    if ranks.size and (ranks.max() > 9 or ranks.min() < -1):
        raise ValueError("per-query ranks must be -1 (miss) or 0..9 (top 10)")
    return "".join("-" if r < 0 else str(int(r)) for r in ranks)


def decode_ranks(s: str) -> np.ndarray:
    return np.array([-1 if c == "-" else int(c) for c in s], dtype=np.int64)


def encode_scores(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in values)


def decode_scores(s: str) -> np.ndarray:
    return np.array([float(x) for x in s.split()], dtype=np.float64)


def rouge_l_per_record(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Sentence-level ROUGE-L F1 in percent, one per record (same scorer settings as bench.metrics)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return np.array(
        [100.0 * scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    )


def per_query_field(evaluation) -> dict | None:
    """The compact ``per_query`` entry of a record, from a test-split `Evaluation`."""
    if evaluation.ranks is not None:
        return {"n": int(len(evaluation.ranks)), "order": "user id", "ranks": encode_ranks(evaluation.ranks)}
    if getattr(evaluation, "scores", None) is not None:
        return {"n": int(len(evaluation.scores)), "order": "test records", "rouge_l": encode_scores(evaluation.scores)}
    return None


def query_values(record: dict, metric: str) -> np.ndarray | None:
    """One value per query for `metric` from a record's ``per_query``, or None when it has none."""
    pq = record.get("per_query")
    if not pq:
        return None
    if metric in RANK_METRICS and "ranks" in pq:
        return per_query_rank_metrics(decode_ranks(pq["ranks"]), metric)
    key = TEXT_PER_QUERY.get(metric)
    if key and key in pq:
        return decode_scores(pq[key])
    return None


def seed_mean_values(records: Sequence[dict], metric: str) -> np.ndarray | None:
    """Each query's value averaged over the records (seeds); None if any record lacks it or sizes differ."""
    arrays = [query_values(r, metric) for r in records]
    if not arrays or any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return None
    return np.mean(np.stack(arrays), axis=0)


@dataclass
class PairedResult:
    metric: str
    n: int
    mean_a: float
    mean_b: float
    statistic: float
    p: float

    @property
    def diff(self) -> float:
        return self.mean_a - self.mean_b

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.p) and self.p < ALPHA)


def paired_test(records_a: Sequence[dict], records_b: Sequence[dict], metric: str) -> PairedResult | None:
    """Paired t-test of `metric` between two groups of records over the same queries.

    None when either side has no per-query values or the two were evaluated on different query sets.
    """
    from scipy import stats

    a, b = seed_mean_values(records_a, metric), seed_mean_values(records_b, metric)
    if a is None or b is None or len(a) != len(b) or len(a) < 2:
        return None
    d = a - b
    if np.allclose(d, 0.0):  # identical outputs: the t statistic is undefined, and there is no difference
        return PairedResult(metric, len(a), float(a.mean()), float(b.mean()), 0.0, 1.0)
    res = stats.ttest_rel(a, b)
    return PairedResult(metric, len(a), float(a.mean()), float(b.mean()), float(res.statistic), float(res.pvalue))
