"""The runner's plan: the settings each job gets, and how many jobs run side by side."""

from __future__ import annotations

import pytest

from bench.errors import UsageError
from bench.run.runner import RunPlan, _job_spec, resolve_parallel, side_by_side_order, usable_cores
from models.vip5 import P5_SYNTHETIC, VIP5_SYNTHETIC


def _plan(dataset: str, overrides=None, tuned=None) -> RunPlan:
    return RunPlan(dataset, ["direct"], {"direct": ["vip5"]}, [1], overrides=overrides or {}, tuned=tuned or {})


def test_vip5_gets_its_cpu_budget_on_the_embedded_dataset_only():
    spec = _job_spec(_plan("synthetic"), "direct", "vip5", 1, "")
    assert spec["overrides"] == VIP5_SYNTHETIC and spec["dataset_defaults"] == VIP5_SYNTHETIC
    assert VIP5_SYNTHETIC["backbone_epochs"] == P5_SYNTHETIC["epochs"]  # the P5 row is VIP5's backbone
    assert spec["overrides"]["beams"] == 10 and spec["overrides"]["train_candidates"] == 20
    other = _job_spec(_plan("beauty"), "direct", "vip5", 1, "")
    assert other["overrides"] == {} and other["dataset_defaults"] == {}


def test_set_wins_over_tuned_which_wins_over_dataset_defaults():
    plan = _plan("synthetic", overrides={"epochs": "7"}, tuned={("direct", "vip5"): {"epochs": "5", "beams": "12"}})
    over = _job_spec(plan, "direct", "vip5", 1, "")["overrides"]
    assert over["epochs"] == "7" and over["beams"] == "12" and over["val_queries"] == VIP5_SYNTHETIC["val_queries"]


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


def test_side_by_side_jobs_never_train_one_shared_model_twice_at_once(monkeypatch):
    """P5 and VIP5 jobs of one seed share trainings: while one trains them, the others wait in the
    queue (their slot runs another job) and start once it is done."""
    import threading
    import time

    import bench.run.runner as runner
    from bench.run.runner import JobResult

    plan = RunPlan("synthetic", ["sequential", "direct"], {"sequential": ["vip5", "p5", "sasrec"],
                                                          "direct": ["vip5", "p5", "bpr_mf"]}, [1], parallel=2)
    jobs = list(plan.jobs())
    log, finished, lock = [], [], threading.Lock()
    generative = {"vip5", "p5"}

    def fake_child(plan, task, model, seed, command, relay=None, threads=None):
        with lock:
            if model in generative and any(m in generative for _, m in log):
                # the first P5/VIP5 job trains both shared models: no other may start before it ends
                assert any(m in generative for _, m in finished), log
            log.append((task, model))
        time.sleep(0.05)
        with lock:
            finished.append((task, model))
        return JobResult(task, model, seed, [])

    monkeypatch.setattr(runner, "_run_child", fake_child)
    results = runner._run_side_by_side(plan, jobs, "")
    assert [(r.task, r.model) for r in results] == [(t, m) for t, m, _ in jobs]
    assert log[0] == ("sequential", "vip5")  # the longest chain (P5, then VIP5 on it) starts first
