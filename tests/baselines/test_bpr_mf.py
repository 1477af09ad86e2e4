"""BPR-MF: deterministic with its defaults (one implicit thread), and the record says how many threads trained it."""

from __future__ import annotations

import numpy as np

from baselines.bpr_mf import BPRMF, BPRMFConfig
from bench.train import FitLog


def _fit(data, **cfg):
    m = BPRMF(BPRMFConfig(epochs=5, **cfg), data, task="direct", seed=3)
    m.fit(FitLog(None, "ndcg@10", verbose=False))
    return m


def test_two_runs_with_the_defaults_are_identical(tiny):
    a, b = _fit(tiny), _fit(tiny)
    assert BPRMFConfig().threads == 1
    assert np.array_equal(a.item_f, b.item_f) and np.array_equal(a.user_f, b.user_f)
    queries = tiny.rank_queries("direct", "test")
    assert a.rank(queries, 10) == b.rank(queries, 10)


def test_the_record_states_the_threads_implicit_used(tiny, monkeypatch):
    assert _fit(tiny).record_extras("direct") == {"model_threads": 1, "deterministic": True}
    m = BPRMF(BPRMFConfig(threads=0), tiny, task="direct")  # 0: OpenMP's default
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert m.record_extras("direct") == {"model_threads": 7, "deterministic": False}
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    assert m.record_extras("direct")["model_threads"] == 3
