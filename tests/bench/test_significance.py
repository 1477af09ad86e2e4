"""Per-query values in records and the paired test behind the tables' daggers."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import fake_record

from bench.significance import (
    decode_ranks,
    decode_scores,
    encode_ranks,
    encode_scores,
    paired_test,
    query_values,
    seed_mean_values,
)


def test_rank_encoding_round_trip_is_one_character_per_query():
    ranks = np.array([0, -1, 9, 3, -1])
    s = encode_ranks(ranks)
    assert s == "0-93-"
    assert np.array_equal(decode_ranks(s), ranks)
    with pytest.raises(ValueError):
        encode_ranks(np.array([10]))


def test_score_encoding_round_trip_to_two_decimals():
    vals = [0.0, 12.5, 33.333333, 100.0]
    assert encode_scores(vals) == "0 12.5 33.33 100"
    assert np.allclose(decode_scores(encode_scores(vals)), [0, 12.5, 33.33, 100])


def test_query_values_reproduce_the_record_metrics():
    rec = fake_record("sasrec", "sequential", 1, strength=0.4)
    for m in ("hr@5", "hr@10", "ndcg@5", "ndcg@10"):
        assert query_values(rec, m).mean() == pytest.approx(rec["metrics"][m])
    ex = fake_record("peter", "explanation", 1, strength=0.3)
    assert query_values(ex, "rouge-l").mean() == pytest.approx(ex["metrics"]["rouge-l"], abs=0.01)
    assert query_values(ex, "bleu-4") is None  # corpus BLEU has no per-record terms
    assert query_values({"metrics": {}}, "hr@10") is None


def test_seed_mean_averages_each_query_over_seeds():
    a, b = fake_record("x", "direct", 1, strength=0.5), fake_record("x", "direct", 2, strength=0.5)
    mean = seed_mean_values([a, b], "hr@10")
    assert np.allclose(mean, (query_values(a, "hr@10") + query_values(b, "hr@10")) / 2)
    short = fake_record("x", "direct", 3, strength=0.5, n=50)
    assert seed_mean_values([a, short], "hr@10") is None, "different query sets cannot be averaged"


def test_paired_test_separates_a_real_difference_from_none():
    strong = [fake_record("vip5", "direct", s, strength=0.7, prompt="B-5") for s in (1, 2)]
    weak = [fake_record("bpr_mf", "direct", s, strength=0.2) for s in (1, 2)]
    res = paired_test(strong, weak, "ndcg@10")
    assert res.significant and res.diff > 0 and res.n == 200
    same = paired_test(weak, weak, "ndcg@10")
    assert not same.significant and same.p == 1.0
    assert paired_test(strong, [fake_record("y", "direct", 1, strength=0.2, n=10)], "ndcg@10") is None


def test_worker_records_carry_per_query_values(tiny):
    """The evaluator's per-query output is what the worker stores (ranks; ROUGE-L per record)."""
    from bench.evaluate import evaluate
    from bench.registry import get_model
    from bench.significance import per_query_field
    from bench.train import FitLog

    for name, task in (("pop", "direct"), ("explain_ref", "explanation")):
        spec = get_model(name)
        model = spec.cls(spec.config(), tiny, task=task, device="cpu", seed=0)
        model.fit(FitLog(None, "loss", verbose=False))
        ev = evaluate(model, tiny, task, "test", per_query=True)
        field = per_query_field(ev)
        rec = {"metrics": ev.metrics, "per_query": field}
        metric = "ndcg@10" if task == "direct" else "rouge-l"
        assert field["n"] == (tiny.n_users if task == "direct" else len(tiny.review_split("test")))
        assert query_values(rec, metric).mean() == pytest.approx(ev.metrics[metric], abs=0.01)
