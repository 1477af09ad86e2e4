"""The task registry: every module asks it, so a fourth task is one entry, its evaluator and a model.

The toy task lives in tests/plugins/toy_task_plugin.py and reaches the runner's child processes
through $BENCH_PLUGINS, as a user's own task would; nothing else in the suite knows about it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tasks import TASKS, Task, register_task, task_support

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _bench(*argv: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"BENCH_PLUGINS": "toy_task_plugin", "PYTHONPATH": str(PLUGINS), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *argv], env=env | (env_extra or {}),
                          capture_output=True, text=True, timeout=300)


def test_a_fourth_task_appears_in_ls_the_runner_and_a_table(tiny_root, tmp_path):
    ls = _bench("ls", "--data-root", str(tiny_root))
    assert ls.returncode == 0, ls.stderr
    assert "toy-count" in ls.stdout.split("Tasks:")[1] and "counter" in ls.stdout

    results = tmp_path / "results"
    run = _bench("run", "--task", "toy-count", "--dataset", "tiny", "--data-root", str(tiny_root), "--results-dir",
                 str(results), "--device", "cpu", "--jobs", "1", "--seeds", "1", "--set", "off_by=1")
    assert run.returncode == 0, run.stderr
    assert "counter" in run.stdout and "exact" in run.stdout  # the comparison table bench run prints
    rec = json.loads((results / "runs" / "tiny" / "toy-count" / "counter" / "seed1.json").read_text())
    assert rec["metrics"] == {"exact": 0.0, "close": 1.0}  # every answer one too many: the model's answers count

    tables = _bench("tables", "--results-dir", str(results), "--out", str(tmp_path / "tables"))
    assert tables.returncode == 0, tables.stderr
    md = (tmp_path / "tables" / "tiny" / "tableT_toy-count.md").read_text()
    assert "Table T: history length (a toy task)" in md and "answered exactly" in md
    assert "counter" in md.lower() and "0.0000" in md and "1.0000" in md


def test_the_three_tasks_of_the_paper():
    assert list(TASKS)[:3] == ["sequential", "direct", "explanation"]
    for t in TASKS.values():
        assert t.monitor in t.metrics and t.significance in t.metrics
        assert set(t.figure_metrics) <= set(t.metrics)


def test_task_support_reads_what_a_dataset_holds():
    manifest = {"counts": {"users": 5, "reviews": 0}, "unsupported_tasks": {"direct": "fewer than 100 items"}}
    support = task_support(manifest)
    assert support["sequential"] is None
    assert support["direct"] == "fewer than 100 items"
    assert "no reviews" in support["explanation"]


def test_a_task_must_monitor_one_of_its_metrics():
    with pytest.raises(ValueError, match="monitor 'mrr' is not one of its metrics"):
        register_task(Task("bad", "Bad", "tableX", ("hr@10",), monitor="mrr", significance="hr@10", evaluator="m:f"))
    assert "bad" not in TASKS
