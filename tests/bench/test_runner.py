"""The runner's plan: the settings each job gets, and how many jobs run side by side."""

from __future__ import annotations

import pytest

from bench.errors import UsageError
from bench.runner import RunPlan, _job_spec, resolve_parallel, side_by_side_order, usable_cores
from models.vip5 import SYNTHETIC_BUDGET


def _plan(dataset: str, overrides=None, tuned=None) -> RunPlan:
    return RunPlan(dataset, ["direct"], {"direct": ["vip5"]}, [1], overrides=overrides or {}, tuned=tuned or {})


def test_vip5_gets_its_cpu_budget_on_the_embedded_dataset_only():
    spec = _job_spec(_plan("synthetic"), "direct", "vip5", 1, "")
    assert spec["overrides"] == SYNTHETIC_BUDGET and spec["dataset_defaults"] == SYNTHETIC_BUDGET
    assert spec["overrides"]["beams"] == 10 and spec["overrides"]["train_candidates"] == 20
    other = _job_spec(_plan("beauty"), "direct", "vip5", 1, "")
    assert other["overrides"] == {} and other["dataset_defaults"] == {}


def test_set_wins_over_tuned_which_wins_over_dataset_defaults():
    plan = _plan("synthetic", overrides={"epochs": "7"}, tuned={("direct", "vip5"): {"epochs": "5", "beams": "12"}})
    over = _job_spec(plan, "direct", "vip5", 1, "")["overrides"]
    assert over["epochs"] == "7" and over["beams"] == "12" and over["val_queries"] == SYNTHETIC_BUDGET["val_queries"]


def test_jobs_auto_is_one_per_core_on_cpu_and_one_on_cuda():
    assert resolve_parallel("auto", "cpu") == max(1, min(usable_cores(), 4))
    assert resolve_parallel("auto", "cuda") == 1
    assert resolve_parallel("3", "cpu") == 3


@pytest.mark.parametrize("bad", ["0", "-1", "many"])
def test_jobs_must_be_a_positive_count(bad):
    with pytest.raises(UsageError, match=f"--jobs {bad}"):
        resolve_parallel(bad, "cpu")


def test_side_by_side_the_long_runs_of_each_task_start_first():
    seq = ("hgn", "p5", "pop", "s3rec", "sasrec", "vip5")
    jobs = [("sequential", m, 1) for m in seq] + [("direct", m, 1) for m in ("bpr_mf", "vip5")]
    order = [jobs[j][:2] for j in side_by_side_order(["sequential", "direct"], jobs)]
    assert order == [("sequential", m) for m in ("vip5", "s3rec", "p5", "sasrec", "hgn", "pop")] + [
        ("direct", "vip5"), ("direct", "bpr_mf")]
