"""Run-level resume (a job whose records exist for the same config, data and code is kept, not
trained again, unless --rerun), the per-job lock, the summary when every job fails, and a closed
pipe on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.run import runner

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def count_children(monkeypatch):
    started = []
    real = runner._run_child

    def spy(plan, task, model, seed, *a, **k):
        started.append((model, seed))
        return real(plan, task, model, seed, *a, **k)

    monkeypatch.setattr(runner, "_run_child", spy)
    return started


def _argv(tiny_root, results, *extra):
    return ["run", "--task", "direct", "--dataset", "tiny", "--models", "pop,bpr_mf", "--epochs", "1", "--jobs", "1",
            "--device", "cpu", "--data-root", str(tiny_root), "--results-dir", str(results), *extra]


def test_a_second_run_keeps_finished_jobs_and_rerun_trains_them(tiny_root, tmp_path, capsys, count_children):
    results = tmp_path / "results"
    assert main(_argv(tiny_root, results)) == 0
    assert count_children == [("pop", 2022), ("bpr_mf", 2022)]
    rec = json.loads((results / "runs" / "tiny" / "direct" / "bpr_mf" / "seed2022.json").read_text())
    assert rec["job_records"] == 1 and rec["job_fingerprint"] and rec["data_version"]
    capsys.readouterr()

    assert main(_argv(tiny_root, results)) == 0
    assert len(count_children) == 2, "nothing is trained again"
    out, err = capsys.readouterr()
    assert "skipped      bpr_mf · direct · seed 2022: record exists" in err and "use --rerun" in err
    assert "| bpr_mf " in out and "| pop " in out  # the kept records are in the table
    assert "skipped 2 job(s) whose records exist for the same config, data and code" in out

    assert main(_argv(tiny_root, results, "--epochs", "2")) == 0  # another config: bpr_mf only (pop has no epochs)
    assert count_children[2:] == [("bpr_mf", 2022)]
    assert main(_argv(tiny_root, results, "--epochs", "2", "--rerun")) == 0
    assert count_children[3:] == [("pop", 2022), ("bpr_mf", 2022)]


def test_records_are_current_only_when_complete_and_alike(tmp_path):
    from bench.results import write_record
    from bench.run.preflight import existing_records

    key = {"model": "m", "task": "direct", "dataset": "d", "seed": 1, "tag": None, "indexing": "random"}
    body = {"metrics": {}, "time_per_epoch_s": 1.0, "epochs": 1, "trainable_params": 1, "total_params": 1,
            "trainable_pct": 100.0, "peak_memory_mb": 1.0, "memory_kind": "cpu_peak_rss", "device": "cpu",
            "config": {}, "job_fingerprint": "f1", "job_records": 2}
    write_record(tmp_path, key | body | {"prompt": "A"})
    assert not existing_records(tmp_path, key, "f1").current  # prompt B's record is missing: killed in between
    write_record(tmp_path, key | body | {"prompt": "B"})
    assert existing_records(tmp_path, key, "f1").current
    assert not existing_records(tmp_path, key, "f2").current
    assert existing_records(tmp_path, key | {"seed": 2}, "f1") is None
    assert existing_records(tmp_path, key | {"indexing": "sequential"}, "f1") is None


def test_code_fingerprint_follows_the_model_source_not_the_reporting(tmp_path, monkeypatch):
    from bench.run import fingerprint

    mod = tmp_path / "fp_model.py"
    mod.write_text("from bench.train import FitLog\nclass M:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fp_model

    before = fingerprint.code_fingerprint(fp_model.M)
    modules = {m for m, _ in fingerprint._closure(("bench.run.worker", "fp_model"))}
    assert {"fp_model", "bench.train", "bench.evaluate", "bench.metrics"} <= modules
    assert not {"bench.report.tables", "bench.cli", "bench.run.runner", "bench.report.run_table"} & modules
    mod.write_text("from bench.train import FitLog\nclass M:\n    x = 1\n")
    assert fingerprint.code_fingerprint(fp_model.M) != before


def test_a_second_run_of_a_job_in_progress_gets_one_line(tiny_root, tmp_path, capsys):
    from bench.io import LockedError, exclusive_lock
    from bench.results import lock_path
    from bench.run.worker import main as worker_main

    results = tmp_path / "results"
    key = {"model": "pop", "task": "direct", "dataset": "tiny", "seed": 1, "tag": None, "indexing": "random"}
    spec = key | {
        "device": "cpu",
        "data_root": str(tiny_root),
        "results_dir": str(results),
        "out": str(tmp_path / "o.json"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with exclusive_lock(lock_path(results, key), "pop"):
        assert worker_main([str(tmp_path / "spec.json")]) == 1
        with pytest.raises(LockedError):
            with exclusive_lock(lock_path(results, key), "pop"):
                pass
    err = capsys.readouterr().err
    assert err.startswith("error: pop · direct · tiny · seed 1 is being trained by another run (pid ")
    assert err.count("\n") == 1 and "Traceback" not in err
    out = json.loads((tmp_path / "o.json").read_text())
    assert not out["ok"] and out["error"].startswith("LockedError: ")
    assert not (results / "runs").exists()
    assert worker_main([str(tmp_path / "spec.json")]) == 0  # the lock is free again


def test_summary_when_every_job_failed_has_no_timing_line(capsys):
    from bench.cli import _summary

    plan = runner.RunPlan("tiny", ["direct"], {"direct": ["pop"]}, [1, 2], parallel=2)
    results = [runner.JobResult("direct", "pop", s, [], error="RuntimeError: boom") for s in (1, 2)]
    _summary(plan, results)
    out = capsys.readouterr().out
    assert "FAILED: RuntimeError: boom" in out and "side by side" not in out


def test_a_closed_pipe_ends_quietly(tiny_root):
    proc = subprocess.Popen([sys.executable, "-m", "bench", "ls", "--data-root", str(tiny_root)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `| head` that has already gone
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_a_checkpoint_that_does_not_load_is_moved_aside_and_runs_nothing(tmp_path, capsys):
    import pickle

    import torch

    from bench.run.worker import checkpoint_epochs

    good = tmp_path / "good" / "seed1"
    (good / "last").mkdir(parents=True)
    (good / "log.json").write_text(json.dumps({"history": [{"epoch": 1}, {"epoch": 2}]}))
    torch.save({"w": torch.zeros(2)}, good / "last" / "state.pt")
    assert checkpoint_epochs(good, "m") == 2 and good.is_dir()
    assert checkpoint_epochs(tmp_path / "none", "m") is None

    evil = tmp_path / "evil" / "seed1"
    (evil / "last").mkdir(parents=True)
    (evil / "log.json").write_text(json.dumps({"history": [{"epoch": 1}]}))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (evil / "last" / "state.pt").write_bytes(pickle.dumps(Payload()))
    assert checkpoint_epochs(evil, "m") is None
    assert not marker.exists(), "the pickle in a checkpoint must never run"
    assert not evil.exists() and len(list(evil.parent.glob("seed1.unreadable-*"))) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"warning: [m] checkpoint {evil} does not load") and err.count("\n") == 1

    torn = tmp_path / "torn" / "seed1"
    torn.mkdir(parents=True)
    (torn / "log.json").write_text('{"history": [')
    assert checkpoint_epochs(torn, "m") is None and not torn.exists()
    assert "moved aside to" in capsys.readouterr().err


def test_a_checkpoint_of_another_config_is_moved_aside_and_one_of_this_job_kept(tmp_path, capsys):
    from bench.run.worker import FINGERPRINT_FILE, checkpoint_epochs

    ckpt = tmp_path / "seed1"
    assert checkpoint_epochs(ckpt, "m", "fp-a") is None  # nothing yet: the directory is stamped for this job
    assert (ckpt / FINGERPRINT_FILE).read_text() == "fp-a"
    (ckpt / "log.json").write_text(json.dumps({"history": [{"epoch": 1}]}))
    assert checkpoint_epochs(ckpt, "m", "fp-a") == 1  # the same job again: resumed
    assert checkpoint_epochs(ckpt, "m", "fp-b") is None  # another --set / --epochs / data / code: not resumed
    assert "written by another config, data or code" in capsys.readouterr().err
    assert len(list(tmp_path.glob("seed1.other-job-*"))) == 1
    assert (ckpt / FINGERPRINT_FILE).read_text() == "fp-b" and not (ckpt / "log.json").exists()


def test_the_device_kind_is_part_of_a_jobs_fingerprint():
    """Records made on a CPU are not current for a run on a GPU (time, memory and mixed precision
    differ), while the GPU's index does not matter."""
    from bench.run.fingerprint import job_fingerprint

    class M:
        pass

    def fp(device):
        return job_fingerprint(model="m", cls=M, task="direct", config={}, manifest={"files": {}}, indexing="random",
                               tag=None, device=device)

    assert fp("cpu") == fp("cpu") != fp("cuda:0") == fp("cuda:1")
