"""FitLog: early stopping and restoring the best epoch, or (fixed-budget trainings) keeping the
last one, and the still-improving flag the tables show."""

from __future__ import annotations

from bench.train import FitLog


class Dummy:
    def __init__(self):
        self.saved, self.loaded = [], []

    def save(self, path):
        self.saved.append(path)

    def load(self, path):
        self.loaded.append(path)


def _run(scores, keep_last=False, patience=10, max_epochs=None):
    it = iter(scores)
    log = FitLog(lambda: {"ndcg@10": next(it)}, "ndcg@10", verbose=False)
    log.keep_last = keep_last
    model = Dummy()
    for _ in log.epochs(model, max_epochs=max_epochs or len(scores), patience=patience):
        log.add_steps(5)
    return log, model


def test_the_best_epoch_is_restored_and_an_early_stop_is_not_still_improving():
    log, model = _run([0.1, 0.3, 0.2, 0.2], patience=2)
    assert log.best_epoch == 2 and model.loaded and log.stopped_early and len(log.history) == 4
    assert not log.still_improving and log.steps == 20 and log.history[-1]["steps"] == 20


def test_keep_last_runs_the_whole_schedule_and_keeps_the_last_epoch():
    log, model = _run([0.1, 0.3, 0.2, 0.2, 0.1], keep_last=True, patience=1)
    assert len(log.history) == 5 and log.best_epoch == 5 and not model.loaded and not log.stopped_early
    assert not log.still_improving  # its last score is below its best


def test_a_run_whose_last_epoch_is_its_best_at_the_cap_is_still_improving():
    assert _run([0.1, 0.2, 0.3])[0].still_improving
    assert _run([0.1, 0.2, 0.3], keep_last=True)[0].still_improving
    assert not _run([0.3])[0].still_improving  # one epoch: no curve to judge


def test_a_first_epoch_peak_does_not_stop_training_before_the_minimum():
    # validation best after epoch 1, then a dip, then the real learning (BPR on a sparse catalogue)
    scores = [0.07] + [0.05] * 25 + [0.1, 0.2, 0.3, 0.4] + [0.35] * 20
    log, model = _run(scores, patience=20, max_epochs=300)
    assert log.best_epoch == 30 and log.stop_policy["min_epochs"] == 30
    assert len(log.history) == 50 and log.stopped_early  # 20 epochs without improvement after epoch 30


def test_patience_grows_with_the_best_epoch():
    from bench.train import stop_rule

    first, patience_at = stop_rule(max_epochs=200, patience=10)
    assert first == 20 and patience_at(1) == 10 and patience_at(40) == 10 and patience_at(100) == 25
    scores = [0.01 * k for k in range(1, 101)] + [0.5] * 40
    log, _ = _run(scores, patience=10, max_epochs=200)
    assert log.best_epoch == 100 and len(log.history) == 125  # waits a quarter of its best epoch, not 10


def test_an_explicit_minimum_and_short_runs_keep_their_stop():
    log, _ = _run([0.5, 0.4, 0.3, 0.2, 0.1], patience=1)
    assert len(log.history) == 2 and log.stopped_early  # a tenth of 5 epochs: stopping is allowed at once
    it = iter([0.5] + [0.1] * 9)
    log = FitLog(lambda: {"ndcg@10": next(it)}, "ndcg@10", verbose=False)
    assert len(list(log.epochs(Dummy(), max_epochs=10, patience=1, min_epochs=6))) == 6


def test_the_first_training_pass_estimates_the_whole_training(monkeypatch, capsys):
    """A long job says early how long it may take: once, from the first batches of its first epoch,
    with the epoch cap (validation loops and later epochs say nothing more)."""
    import bench.progress as progress_module
    import bench.train as train

    monkeypatch.setattr(progress_module, "ESTIMATE_AFTER_S", 0.0)

    class Model:
        def save(self, path): ...
        def load(self, path): ...

    log = train.FitLog(lambda: {"m": sum(1 for _ in progress_module.progress(range(5)))}, "m", name="toy")
    for _ in log.epochs(Model(), max_epochs=7, patience=10):
        for _ in progress_module.progress(range(40)):
            pass
    said = [line for line in capsys.readouterr().err.splitlines() if "estimate" in line]
    assert len(said) == 1, said
    # the first WARMUP batches carry one-off costs: the rate comes from the one after them at the earliest
    first = f"[toy] estimate from the first {progress_module.WARMUP + 1} of 40 batches"
    assert said[0].startswith(first) and "at most 7 epochs" in said[0]
