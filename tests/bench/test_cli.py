"""The command line: names checked before any data loads, records written, crashes contained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

REQUIRED_FIELDS = {
    "model", "task", "dataset", "seed", "metrics", "time_per_epoch_s", "epochs", "trainable_params", "total_params",
    "peak_memory_mb", "memory_kind", "device", "indexing", "config", "versions", "git_commit", "timestamp",
}


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--dataset", "amazon"], "unknown dataset 'amazon'; known datasets: synthetic"),
        (["run", "--models", "sasrek"], "unknown model 'sasrek'; known models: attn2seq, bpr_mf, bpr_mlp, "),
        (["run", "--task", "rating"], "unknown task 'rating'; known tasks: direct, explanation, sequential"),
        (["run", "--task", "explanation", "--models", "sasrec"], "does not support task 'explanation'"),
        (["run", "--task", "sequential", "--set", "hiden=3"], "--set hiden: no selected model has this config key"),
        (["run", "--task", "sequential", "--set", "hidden=big"], "--set hidden=big: expected int"),
        (["run", "--task", "sequential", "--models", "sasrec", "--set", "hgn.epochs=3"],
         "--set hgn.epochs: 'hgn' is not among the selected models (sasrec); fix: select it with --models"),
        (["run", "--task", "sequential", "--models", "sasrec", "--set", "sasrec.epoch=3"],
         "--set sasrec.epoch: sasrec has no config key 'epoch'; known: "),
        (["run", "--task", "sequential", "--models", "sasrec", "--set", "sasrec.hidden=big"],
         "--set hidden=big: expected int"),
        (["run", "--indexing", "alphabetical"], "unknown indexing 'alphabetical'"),
        (["data", "show", "nothing"], "unknown dataset 'nothing'"),
    ],
)
def test_bad_names_exit_2_before_any_data_loads(argv, needle, tmp_path, capsys):
    root = tmp_path / "data"
    assert main([*argv, "--data-root", str(root)]) == 2
    assert needle in capsys.readouterr().err
    assert not root.exists(), "nothing may be generated or loaded before the names are checked"


def test_ls_lists_models_tasks_and_datasets(tiny_root, capsys):
    assert main(["ls", "--data-root", str(tiny_root)]) == 0
    out = capsys.readouterr().out
    assert "sasrec" in out and "sequential" in out and "tiny" in out and "synthetic" in out


def test_data_show(tiny_root, capsys):
    assert main(["data", "show", "tiny", "--data-root", str(tiny_root)]) == 0
    out = capsys.readouterr().out
    assert "users" in out and "explanation" in out and "feature sets" in out


def test_run_writes_records_and_contains_a_crash(tiny_root, tmp_path):
    env = os.environ | {"BENCH_PLUGINS": "bench_test_plugins", "PYTHONPATH": str(PLUGINS)}
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--task", "direct", "--dataset", "tiny", "--models", "crashy,pop,bpr_mf",
         "--epochs", "2", "--data-root", str(tiny_root), "--results-dir", str(results), "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "FAILED: RuntimeError: deliberate crash for the test" in proc.stdout
    recs = sorted((results / "runs" / "tiny" / "direct").rglob("*.json"))
    assert [p.parent.name for p in recs] == ["bpr_mf", "pop"]
    for p in recs:
        rec = json.loads(p.read_text())
        assert REQUIRED_FIELDS <= rec.keys()
        assert rec["memory_kind"] == "cpu_peak_rss" and rec["peak_memory_mb"] > 0
        # the model's own share: the process's peak minus what it held before the model was built
        assert 0 <= rec["peak_memory_model_mb"] < rec["peak_memory_mb"]
        assert "optimizer_steps" in rec and isinstance(rec["still_improving"], bool)
        assert set(rec["metrics"]) >= {"hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10"}
        assert rec["indexing"] == "random" and rec["device"] == "cpu"
    assert "| pop" in proc.stdout and "| bpr_mf" in proc.stdout


def test_jobs_side_by_side_keep_their_records_and_label_their_output(tiny_root, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--task", "sequential", "--dataset", "tiny", "--models", "pop,sasrec",
         "--epochs", "2", "--seeds", "1,2", "--jobs", "2", "--data-root", str(tiny_root), "--results-dir", str(results),
         "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(p.read_text()) for p in sorted((results / "runs" / "tiny" / "sequential").rglob("*.json"))]
    assert sorted((r["model"], r["seed"]) for r in recs) == [("pop", 1), ("pop", 2), ("sasrec", 1), ("sasrec", 2)]
    assert all(r["concurrent_jobs"] == 2 and r["torch_threads"] == 1 for r in recs)
    assert "4 jobs, 2 side by side" in proc.stderr
    # a child's own lines (sasrec's epochs) come through with the job's name in front
    assert any(line.startswith("[sasrec·sequential·1] [sasrec] epoch") for line in proc.stderr.splitlines())


def test_a_single_job_is_recorded_as_running_alone(tiny_root, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--task", "sequential", "--dataset", "tiny", "--models", "pop",
         "--jobs", "2", "--data-root", str(tiny_root), "--results-dir", str(results), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (rec,) = [json.loads(p.read_text()) for p in (results / "runs" / "tiny" / "sequential").rglob("*.json")]
    assert rec["concurrent_jobs"] == 1
    assert "side by side" not in proc.stdout


@pytest.mark.parametrize("jobs", [1, 2])
def test_terminating_the_runner_stops_the_model_processes(tiny_root, tmp_path, jobs):
    import signal
    import time

    pid_file = tmp_path / "child.pid"
    env = os.environ | {
        "BENCH_PLUGINS": "bench_test_plugins",
        "PYTHONPATH": str(PLUGINS),
        "SLEEPY_PID_FILE": str(pid_file),
    }
    seeds = ",".join(str(s) for s in range(1, jobs + 2))  # one job more than run at once: it must never start
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--task",
            "sequential",
            "--models",
            "sleepy",
            "--data-root",
            str(tiny_root),
            "--results-dir",
            str(tmp_path / "results"),
            "--device",
            "cpu",
            "--seeds",
            seeds,
            "--jobs",
            str(jobs),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while (not pid_file.exists() or len(pid_file.read_text().split()) < jobs) and time.monotonic() < deadline:
        time.sleep(0.2)
    children = [int(p) for p in pid_file.read_text().split()]
    assert len(children) == jobs
    runner.send_signal(signal.SIGTERM)
    runner.wait(timeout=60)
    for _ in range(100):
        if not any(Path(f"/proc/{c}").exists() for c in children):
            break
        time.sleep(0.1)
    assert not any(Path(f"/proc/{c}").exists() for c in children), "a model's process outlived the runner"
    time.sleep(0.5)
    assert len(pid_file.read_text().split()) == jobs, "a queued job started after the runner was stopped"
