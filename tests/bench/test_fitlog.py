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
