"""Metrics against hand-computed values."""

import math

import numpy as np
import pytest

from bench.metrics import (
    bleu4,
    per_query_rank_metrics,
    rank_metrics,
    rating_metrics,
    rouge,
    target_ranks,
    text_metrics,
)


def test_target_ranks_finds_first_position_or_minus_one():
    ranked = [[5, 3, 9], [1, 2], [7, 8, 9]]
    assert target_ranks(ranked, [3, 1, 4]).tolist() == [1, 0, -1]


def test_rank_metrics_hand_computed():
    # targets at 0-based ranks 0, 2, 6 and one miss
    m = rank_metrics(np.array([0, 2, 6, -1]))
    assert m["hr@1"] == pytest.approx(1 / 4)
    assert m["hr@5"] == pytest.approx(2 / 4)
    assert m["hr@10"] == pytest.approx(3 / 4)
    # NDCG with one relevant item: 1/log2(rank+2) for 0-based ranks -> 1, 1/2, 1/3
    assert m["ndcg@5"] == pytest.approx((1 + 1 / 2) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)


def test_rank_metrics_cutoff_is_strict():
    # rank 5 (0-based) is the 6th item: outside the top 5, inside the top 10
    m = rank_metrics(np.array([5]))
    assert m["hr@5"] == 0.0 and m["ndcg@5"] == 0.0
    assert m["hr@10"] == 1.0 and m["ndcg@10"] == pytest.approx(1 / math.log2(7))


def test_per_query_values_average_to_the_metric():
    ranks = np.array([0, 3, 9, -1, 12])
    for metric in ("hr@5", "ndcg@10"):
        assert per_query_rank_metrics(ranks, metric).mean() == pytest.approx(rank_metrics(ranks)[metric])


def test_bleu4_hand_computed():
    # p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3, equal lengths (no brevity penalty)
    got = bleu4(["the cat sat on a mat"], ["the cat sat on the mat"])
    assert got == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)


def test_bleu4_is_on_words_not_characters():
    assert bleu4(["Great COLOR, really."], ["great color , really ."]) == pytest.approx(100.0)
    assert bleu4(["a b c d"], ["e f g h"]) == 0.0


def test_bleu4_brevity_penalty():
    # hypothesis is a 4-word prefix of a 6-word reference: all precisions 1, BP = exp(1 - 6/4)
    got = bleu4(["the cat sat on"], ["the cat sat on the mat"])
    assert got == pytest.approx(100 * math.exp(1 - 6 / 4))


def test_rouge_hand_computed():
    r = rouge(["the cat sat on a mat"], ["the cat sat on the mat"])
    assert r["rouge-1"] == pytest.approx(100 * 5 / 6)  # 5 shared unigrams of 6 on each side
    assert r["rouge-2"] == pytest.approx(100 * 3 / 5)  # the cat, cat sat, sat on
    assert r["rouge-l"] == pytest.approx(100 * 5 / 6)  # LCS: the cat sat on mat


def test_rouge_is_averaged_over_sentences():
    r = rouge(["a b", "c d"], ["a b", "x y"])
    assert r["rouge-1"] == pytest.approx(50.0)


def test_text_metrics_checks_lengths():
    with pytest.raises(ValueError):
        text_metrics(["a"], ["a", "b"])


def test_rating_metrics():
    m = rating_metrics([4, 2, 5], [5, 2, 3])
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert m["mae"] == pytest.approx(1.0)
