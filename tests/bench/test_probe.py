"""The plan's estimate for a job that never ran here: a probe times its first batches
(bench.progress.Probed, bench/run/probe.py), and `bench run --dry-run` prints it without training."""

from __future__ import annotations

import pytest

from bench import progress
from bench.cli import main
from bench.run.probe import describe_probe, total_line
from bench.train import FitLog


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Model:
    def save(self, path):
        pass

    def load(self, path):
        pass


def _probed(monkeypatch, max_epochs: int, batches: int | None, batch_s, validate_s: float = 0.0):
    """Train a stand-in under a probe of 8 s on a fake clock: `batches` per epoch taking `batch_s(n)`
    seconds each (None: an epoch of 0.25 s without a batch loop); validation takes `validate_s`."""
    clock = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)

    def validate():
        clock.t += validate_s
        return {"score": 0.5}

    progress.probe_after(8.0)
    try:
        log = FitLog(validate, "score", "toy", verbose=False)
        with pytest.raises(progress.Probed) as got:
            for _epoch in log.epochs(Model(), max_epochs=max_epochs, patience=5):
                if batches is None:
                    clock.t += 0.25
                for n in progress.progress(range(batches or 0)):
                    clock.t += batch_s(n)
    finally:
        progress.probe_after(None)
    return got.value


def test_a_probe_stops_the_first_pass_and_rates_it_without_its_warm_up(monkeypatch):
    # two slow first batches, then 1 s each
    p = _probed(monkeypatch, 50, 1000, lambda n: 5.0 if n < progress.WARMUP else 1.0)
    # stopped 8 s after the warm-up; the epoch: 10 s of warm-up + 998 batches at 1 s
    assert (p.name, p.passes, p.per_pass_s, p.until_deadline) == ("toy", 50, 10.0 + 998.0, None)


def test_a_pass_shorter_than_the_probe_is_timed_whole(monkeypatch):
    p = _probed(monkeypatch, 3, 4, lambda n: 0.5)
    assert p.per_pass_s == 2.0 and p.passes == 3


def test_an_epoch_without_a_batch_loop_is_timed_with_its_validation(monkeypatch):
    """A library epoch (implicit's BPR-MF) shows no batches: the probe ends after the first epoch
    and its validation, instead of running the whole training."""
    p = _probed(monkeypatch, 100, None, None, validate_s=2.0)
    assert (p.name, p.per_pass_s, p.passes) == ("toy", 2.25, 100)


def test_what_a_probe_says_about_the_whole_job():
    timed = {"ok": True, "probe": {"stage": "p5", "setup_s": 20.0, "per_pass_s": 300.0, "passes": 6,
                                   "until_deadline_s": None}}
    e = describe_probe(timed, None)
    assert e.seconds == 20.0 + 6 * 300.0 and "p5: 5m00s per epoch, at most 6" in e.text
    # a first stage that runs into the time limit (or its share of it): the job takes the whole limit
    capped = {"ok": True, "probe": timed["probe"] | {"until_deadline_s": 600.0}}
    assert describe_probe(capped, 1200.0).seconds == 1200.0
    assert describe_probe({"ok": True, "probe": {"whole_job_s": 3.5}}, None).seconds == 3.5
    assert describe_probe({"timeout": True}, None).seconds is None
    assert describe_probe({"ok": False}, None).seconds is None
    line = total_line([e, describe_probe({"ok": False}, None)], parallel=2)
    assert line.startswith("estimated: ~30m20s of training in all, ~15m10s with 2 side by side")
    assert "1 job(s) without an estimate" in line


def test_dry_run_prints_every_job_with_an_estimate_and_trains_nothing(tiny_root, tmp_path, capfd):
    results = tmp_path / "results"
    argv = ["run", "--task", "sequential", "--dataset", "tiny", "--models", "pop,sasrec", "--epochs", "30",
            "--jobs", "2", "--device", "cpu", "--data-root", str(tiny_root), "--results-dir", str(results),
            "--dry-run"]
    assert main(argv) == 0
    _, err = capfd.readouterr()
    lines = {line.split("·")[0].split()[-1]: line for line in err.splitlines() if line.startswith("  train")}
    assert set(lines) == {"pop", "sasrec"}
    assert "the whole job ran while it was timed" in lines["pop"]
    assert "from its first batches (sasrec:" in lines["sasrec"] and "at most 30" in lines["sasrec"]
    assert "estimated: ~" in err
    assert not (results / "runs").exists(), "a dry run writes no records"


def test_dry_run_of_a_single_job_prints_its_plan(tiny_root, tmp_path, capfd):
    """A lone job without a time limit prints no plan when it runs; a dry run always prints it."""
    argv = ["run", "--task", "sequential", "--dataset", "tiny", "--models", "pop", "--device", "cpu",
            "--data-root", str(tiny_root), "--results-dir", str(tmp_path / "results"), "--dry-run"]
    assert main(argv) == 0
    _, err = capfd.readouterr()
    assert "plan: 1 job(s) on tiny, 1 to train" in err and "  train        pop · sequential" in err
