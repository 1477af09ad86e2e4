"""One contract test for every registered model and each task it supports: fit on a tiny
dataset, rank or explain, valid output, and a save/load round trip with identical output."""

from __future__ import annotations

import numpy as np
import pytest

from bench.config import build_config
from bench.evaluate import evaluate
from bench.model import has_hook, variants_of
from bench.registry import all_models
from bench.tasks import get_task
from bench.train import FitLog

CASES = [(name, task) for name, spec in all_models().items() for task in sorted(spec.tasks)]


def _build(spec, data, task):
    # a model may name cheaper settings for this test (tiny backbone, few beams) in CONTRACT_OVERRIDES
    overrides = {"epochs": 2} | spec.contract_overrides
    cfg = build_config(spec.config, overrides, strict=False)
    return spec.cls(cfg, data, task=task, device="cpu", seed=0)


def _outputs(model, data, task, variant, n: int | None = None):
    """The model's test output for the first `n` queries (all by default)."""
    kw = {} if variant is None else {"variant": variant}
    if task == "explanation":
        return model.explain(data.explain_queries("test")[:n], **kw)
    return model.rank(data.rank_queries(task, "test")[:n], 10, **kw)


VAL_QUERIES = 20  # validation on a fixed subset, as the worker does for slow models (val_queries)
RELOADED_QUERIES = 16  # a reloaded model must give the same output; a subset shows it as well as all


NO_OPTIMIZER_STEPS = {"pop", "explain_ref", "bpr_mf"}


@pytest.mark.parametrize("name,task", CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_model_contract(name, task, tiny, tmp_path):
    spec = all_models()[name]
    model = _build(spec, tiny, task)
    variants = variants_of(model, task)
    log = FitLog(
        lambda: evaluate(model, tiny, task, "val", variants[0], limit=VAL_QUERIES).metrics,
        get_task(task).monitor,
        name,
        verbose=False,
    )
    model.fit(log)
    assert len(log.epoch_times) >= 1 and log.best_epoch is not None
    # records carry optimizer steps; only closed-form fits and implicit's own SGD loop have none
    assert (log.steps is None) == (name in NO_OPTIMIZER_STEPS), log.steps
    assert log.steps is None or log.steps >= len(log.epoch_times)
    trainable, total = model.num_params()
    assert 0 <= trainable <= total
    if has_hook(model, "id_embeddings"):  # bench diagnose's hidden-taste probe reads one row per id
        vectors = model.id_embeddings()
        for kind, n in (("users", tiny.n_users), ("items", tiny.n_items)):
            if kind in vectors:
                assert vectors[kind].ndim == 2 and len(vectors[kind]) == n and np.isfinite(vectors[kind]).all()

    out = _outputs(model, tiny, task, variants[0])
    if task == "explanation":
        queries = tiny.explain_queries("test")
        assert len(out) == len(queries) and all(isinstance(t, str) for t in out)
    else:
        queries = tiny.rank_queries(task, "test")
        assert len(out) == len(queries)
        for q, lst in zip(queries, out, strict=True):
            assert len(lst) == 10 and len(set(lst)) == len(lst), "10 distinct ids per query"
            assert all(0 <= i < tiny.n_items for i in lst)
            if q.candidates is not None:
                assert set(lst) <= set(q.candidates.tolist()), "direct task: only the query's candidates"
            if q.exclude is not None:  # the user's history on a dataset without repeats (every ranker)
                assert not set(lst) & set(q.exclude.tolist()), "a ranking against all items left out the history"

    model.save(tmp_path / "ckpt")
    fresh = _build(spec, tiny, task)
    fresh.load(tmp_path / "ckpt")
    again = _outputs(fresh, tiny, task, variants[0], RELOADED_QUERIES)
    if task == "explanation":
        assert again == out[:RELOADED_QUERIES]
    else:
        assert np.array_equal(np.asarray(again), np.asarray(out[:RELOADED_QUERIES]))
