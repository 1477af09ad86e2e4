"""`bench run --time-limit`: a training pass ends at the job's deadline, FitLog keeps that epoch and
stops, the record and the table say so, and the same command goes on training (nothing is skipped)."""

from __future__ import annotations

import json

import pytest

from bench import progress as train_progress
from bench.cli import _duration, main
from bench.progress import progress, set_time_limit
from bench.train import FitLog


@pytest.fixture(autouse=True)
def _no_limit_after():
    yield
    set_time_limit(None)


class Counting:
    """A stand-in model: one pass over 100 "batches" per epoch, counting the ones it got."""

    def __init__(self):
        self.batches: list[int] = []

    def save(self, path):
        pass

    def load(self, path):
        pass


def _run_out_of_time(monkeypatch, log, max_epochs: int, batches: int, at_batch: int) -> list[int]:
    """Batches each epoch got when the clock runs out at batch `at_batch` of epoch 2."""
    m = Counting()
    set_time_limit(3600)
    for epoch in log.epochs(m, max_epochs=max_epochs, patience=10):
        got = 0
        for _ in progress(range(batches)):
            got += 1
            if epoch == 2 and got == at_batch:
                monkeypatch.setattr(train_progress, "_deadline", 0.0)  # the clock runs out mid-epoch
        m.batches.append(got)
    return m.batches


def test_the_training_pass_ends_at_the_deadline_and_fitlog_stops(monkeypatch):
    log = FitLog(lambda: {"score": 1.0}, "score", verbose=False)
    assert _run_out_of_time(monkeypatch, log, max_epochs=5, batches=100, at_batch=30) == [100, 30]
    assert log.time_capped and not log.stopped_early
    assert train_progress.job_time_capped(), "the record's flag: any training of the job (VIP5's P5 backbone too)"
    assert len(log.history) == 2 and log.state()["time_capped"]
    assert sum(1 for _ in progress(range(10))) == 10, "outside a training pass (evaluation) nothing is cut"


def test_a_last_epoch_cut_short_is_time_capped(monkeypatch):
    """The clock running out inside the last epoch leaves that training incomplete: it is flagged
    (a multitask training is then not cached as complete)."""
    log = FitLog(None, "score", verbose=False)
    assert _run_out_of_time(monkeypatch, log, max_epochs=2, batches=50, at_batch=10) == [50, 10]
    assert log.time_capped and train_progress.job_time_capped()


def test_a_time_capped_run_whose_last_epoch_was_best_is_still_improving(monkeypatch):
    scores = iter([0.1, 0.2, 0.3])
    log = FitLog(lambda: {"score": next(scores)}, "score", verbose=False)
    _run_out_of_time(monkeypatch, log, max_epochs=50, batches=20, at_batch=5)  # stopped in epoch 2 of 50
    assert log.time_capped and log.still_improving, "best at its last epoch when the clock stopped it"
    flat = iter([0.3, 0.1])
    log = FitLog(lambda: {"score": next(flat)}, "score", verbose=False)
    _run_out_of_time(monkeypatch, log, max_epochs=50, batches=20, at_batch=5)
    assert log.time_capped and not log.still_improving


def test_no_limit_runs_the_whole_schedule():
    set_time_limit(None)  # a new job: also clears an earlier job's flag
    m = Counting()
    log = FitLog(None, "score", verbose=False)
    for _ in log.epochs(m, max_epochs=3, patience=10):
        m.batches.append(sum(1 for _ in progress(range(7))))
    assert m.batches == [7, 7, 7] and not log.time_capped and not train_progress.job_time_capped()


def test_durations():
    assert [_duration(x) for x in ("90s", "30m", "2h", "1h30m", "45")] == [90, 1800, 7200, 5400, 45]


def test_a_capped_run_is_flagged_and_the_same_command_goes_on(tiny_root, tmp_path, capfd):
    results = tmp_path / "results"
    argv = ["run", "--task", "sequential", "--dataset", "tiny", "--models", "sasrec", "--epochs", "40", "--jobs", "1",
            "--device", "cpu", "--data-root", str(tiny_root), "--results-dir", str(results), "--time-limit", "1s"]
    assert main(argv) == 0
    out, err = capfd.readouterr()  # the job's own lines come from its worker process
    rec = json.loads(next((results / "runs" / "tiny" / "sequential" / "sasrec").glob("*.json")).read_text())
    assert rec["time_capped"] and rec["time_limit_s"] == 1 and rec["epochs"] < 40
    assert "⏱" in out and "each stops training after" in err and "time limit reached" in err
    assert main(argv) == 0  # not kept as finished: it trains on from its checkpoint
    _, err = capfd.readouterr()
    assert "1 to train" in err and "resuming after epoch" in err


def test_a_bad_time_limit_is_one_line(tiny_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--dataset", "tiny", "--data-root", str(tiny_root), "--time-limit", "soon"])
    assert e.value.code == 2 and "expected a duration" in capsys.readouterr().err


def test_the_plan_estimates_a_job_from_its_earlier_run(tmp_path):
    from bench.results import record_path
    from bench.run.plan import _estimate, earlier_job_seconds

    key = {"model": "p5", "task": "sequential", "dataset": "tiny", "seed": 1, "tag": None, "indexing": "random"}
    assert earlier_job_seconds(str(tmp_path), key) is None and _estimate(None).startswith("never ran here")
    for seed, prompt, fit, ev in ((1, "A-3", 100.0, 10.0), (1, "A-9", 100.0, 5.0), (2, "A-3", 30.0, 1.0)):
        path = record_path(tmp_path, key | {"seed": seed, "prompt": prompt})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(key | {"seed": seed, "prompt": prompt, "fit_time_s": fit, "eval_time_s": ev}))
    # seed 1: one training shared by its two prompts, both evaluations; the longest seed counts
    assert earlier_job_seconds(str(tmp_path), key | {"seed": 7}) == (100.0, 15.0)
    assert _estimate(115.0) == "~1m55s in an earlier run"


class Resumable(Counting):
    """Counting, with a training state the checkpoints keep (how many batches it has trained)."""

    def save_training_state(self, path):
        (path / "batches.json").write_text(json.dumps(self.batches))

    def load_training_state(self, path):
        self.batches = json.loads((path / "batches.json").read_text())


def test_an_epoch_cut_short_is_marked_and_the_same_command_goes_on_after_it(monkeypatch, tmp_path):
    """The cut epoch is checkpointed (an epoch longer than the limit must not be redone for ever)
    and its history row says it was cut, in this run's log and in the resumed one's."""
    m = Resumable()
    log = FitLog(lambda: {"score": float(len(m.batches))}, "score", verbose=False, checkpoint_dir=tmp_path)
    set_time_limit(3600)
    for epoch in log.epochs(m, max_epochs=3, patience=10):
        got = 0
        for _ in progress(range(20)):
            got += 1
            if epoch == 2 and got == 5:
                monkeypatch.setattr(train_progress, "_deadline", 0.0)
        m.batches.append(got)
    assert m.batches == [20, 5] and log.time_capped
    assert [row.get("cut", False) for row in log.history] == [False, True]

    set_time_limit(None)  # the same command again, with time to spare
    m2 = Resumable()
    log2 = FitLog(lambda: {"score": float(len(m2.batches))}, "score", verbose=False, checkpoint_dir=tmp_path)
    for _ in log2.epochs(m2, max_epochs=3, patience=10):
        m2.batches.append(sum(1 for _ in progress(range(20))))
    assert log2.resumed_from_epoch == 2 and m2.batches == [20, 5, 20]
    assert [row.get("cut", False) for row in log2.history] == [False, True, False] and not log2.time_capped
