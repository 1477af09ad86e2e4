"""Metrics, computed in one place for every model.

Ranking: HR@k and NDCG@k with a single relevant item (IDCG = 1, NDCG = 1/log2(rank+1)).
Text: BLEU-4 on lower-cased word tokens, corpus level (nltk, unsmoothed, as the
TF-NMT BLEU of the official scripts), and ROUGE-1/2/L F1 (rouge-score), sentence level,
averaged; all in percent. The official VIP5 notebook computed BLEU over characters, so its
BLEU numbers are not comparable with ours (stated under every table).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

RANK_KS = {"hr": (1, 5, 10), "ndcg": (5, 10)}
RANK_METRICS = [f"{m}@{k}" for m, ks in RANK_KS.items() for k in ks]
TEXT_METRICS = ["bleu-4", "rouge-1", "rouge-2", "rouge-l"]
RATING_METRICS = ["rmse", "mae"]

HIGHER_IS_BETTER = {m: True for m in RANK_METRICS + TEXT_METRICS} | {m: False for m in RATING_METRICS}
HIGHER_IS_BETTER["invalid_rate"] = False


def target_ranks(ranked: Sequence[Sequence[int]], targets: Sequence[int]) -> np.ndarray:
    """0-based rank of each target in its list, or -1 when it is absent (a miss at every k)."""
    out = np.full(len(targets), -1, dtype=np.int64)
    for n, (lst, t) in enumerate(zip(ranked, targets, strict=True)):
        for r, i in enumerate(lst):
            if i == t:
                out[n] = r
                break
    return out


def rank_metrics(ranks: np.ndarray) -> dict[str, float]:
    """HR@k and NDCG@k averaged over queries, from 0-based target ranks (-1 = not retrieved)."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        raise ValueError("no queries to evaluate")
    hit = ranks >= 0
    out = {}
    for k in RANK_KS["hr"]:
        out[f"hr@{k}"] = float(np.mean(hit & (ranks < k)))
    gain = np.where(hit, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
    for k in RANK_KS["ndcg"]:
        out[f"ndcg@{k}"] = float(np.mean(np.where(ranks < k, gain, 0.0)))
    return out


def per_query_rank_metrics(ranks: np.ndarray, metric: str) -> np.ndarray:
    """One value per query (for paired significance tests)."""
    name, k = metric.split("@")
    k = int(k)
    ranks = np.asarray(ranks)
    hit = (ranks >= 0) & (ranks < k)
    if name == "hr":
        return hit.astype(float)
    return np.where(hit, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)


def tokenize(text: str) -> list[str]:
    """Word tokens for BLEU: lower-cased, whitespace-split, punctuation kept as separate tokens."""
    import re

    return re.findall(r"\w+|[^\w\s]", text.lower())


def bleu4(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 in percent on word tokens, uniform weights, brevity penalty, no smoothing."""
    from nltk.translate.bleu_score import corpus_bleu

    hyps = [tokenize(p) for p in predictions]
    refs = [[tokenize(r)] for r in references]
    with warnings.catch_warnings():
        # no 4-gram overlap at all (an untrained model's first validations): BLEU-4 is 0, as
        # unsmoothed BLEU defines it; nltk's six-line warning about it would flood the logs
        warnings.filterwarnings("ignore", message=r"\s*The hypothesis contains 0 counts", category=UserWarning)
        return 100.0 * float(corpus_bleu(refs, hyps, weights=(0.25, 0.25, 0.25, 0.25)))


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L F1 in percent, sentence level, averaged over records."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    tot = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for p, r in zip(predictions, references, strict=True):
        s = scorer.score(r, p)  # (target, prediction)
        tot["rouge-1"] += s["rouge1"].fmeasure
        tot["rouge-2"] += s["rouge2"].fmeasure
        tot["rouge-l"] += s["rougeL"].fmeasure
    n = max(len(predictions), 1)
    return {k: 100.0 * v / n for k, v in tot.items()}


def text_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no records to evaluate")
    return {"bleu-4": bleu4(predictions, references), **rouge(predictions, references)}


def rating_metrics(predicted: Sequence[float], actual: Sequence[float]) -> dict[str, float]:
    err = np.asarray(predicted, float) - np.asarray(actual, float)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
