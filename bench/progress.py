"""Progress of a long job: batch progress bars with their ETA, the job's time limit (`bench run
--time-limit`) that ends a training pass early, and the estimate of a whole training that a job
gives from the first batches of its first epoch. `bench.train.FitLog` drives them per epoch."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from bench import distributed


def _fmt_secs(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# ---------------------------------------------------------------- the job's time limit
# `bench run --time-limit`: one deadline per job process (time.monotonic()), shared by every
# training in it (VIP5's P5 backbone included). An epoch's training pass that runs into it ends
# early: `progress()` stops handing out batches, but only inside FitLog's training pass (never
# in validation or evaluation), and not under torchrun, where every rank must run the same
# number of steps; FitLog then validates that epoch, keeps it and stops.
_deadline: float | None = None
_in_training_pass = False
_capped = False  # some training in this job stopped at the deadline (VIP5's P5 backbone counts)
_pass_cut = False  # the current or last training pass was cut short at the deadline


def set_time_limit(seconds: float | None) -> None:
    """Start the job's clock: training stops `seconds` from now (None: no limit)."""
    global _deadline, _capped
    _deadline = None if seconds is None else time.monotonic() + float(seconds)
    _capped = False


def time_is_up() -> bool:
    return _deadline is not None and time.monotonic() >= _deadline


def _mark_job_time_capped() -> None:
    global _capped
    _capped = True


def job_time_capped() -> bool:
    """Whether any training of this job (since `set_time_limit`) was stopped by the time limit."""
    return _capped


def _set_training_pass(active: bool) -> None:
    global _in_training_pass, _pass_cut
    _in_training_pass = active
    if active:
        _pass_cut = False


def pass_was_cut() -> bool:
    """Whether the last training pass ended early at the deadline (its epoch is not complete)."""
    return _pass_cut


@contextmanager
def stage(name: str, passes: int, share: float) -> Iterator[None]:
    """A training stage outside FitLog's epochs (S3-Rec's pre-training): its progress loops are
    training passes, estimated like FitLog's (`name`, at most `passes` of them), that stop at
    `share` of the job's time left when the stage begins, so that the stage after it (the
    fine-tuning the ranking depends on) keeps the rest. After a cut, `pass_was_cut()` is True:
    the caller ends its loop there. A cut stage marks the job time-capped."""
    global _deadline
    outer = _deadline
    if outer is not None:
        _deadline = time.monotonic() + share * max(0.0, outer - time.monotonic())
    _set_training_pass(True)
    _estimate_training(name, passes)
    try:
        yield
    finally:
        if _pass_cut:
            _mark_job_time_capped()
        _set_training_pass(False)
        _estimate_training(None)
        _deadline = outer


def _until_deadline(iterable: Iterable):
    global _pass_cut
    for item in iterable:
        if _in_training_pass and time_is_up() and not distributed.active():
            _pass_cut = True
            return
        yield item


# The first training pass of a fresh run says, once its first batches have been timed, how long
# the whole training may take (its epochs at most): a long job announces itself early, not after
# its first epoch. FitLog.epochs asks for it; `progress` answers inside that pass.
ESTIMATE_AFTER_S = 30.0
WARMUP = 2  # first batches of a pass left out of its rate
_estimate_for: tuple[str, int] | None = None  # (model name, max epochs) of the pass to estimate


class Probed(BaseException):
    """Raised by a probe (`probe_after`) once the first estimated training pass has been timed: the
    job stops there. A BaseException, so that no model's own `except Exception` can swallow it."""

    def __init__(self, name: str, per_pass_s: float, passes: int, pass_started: float, until_deadline: float | None):
        super().__init__(name)
        self.name, self.per_pass_s, self.passes = name, per_pass_s, passes
        self.pass_started = pass_started  # time.perf_counter() when the timed pass began (the setup ends there)
        self.until_deadline = until_deadline  # the time limit left when it began (None: no limit)


# `bench run` times a job's first batches before it trains anything (the plan's estimate): the job
# runs in a probe, whose first estimated pass raises Probed after `_probe_s` seconds of batches
_probe_s: float | None = None


def probe_after(seconds: float | None) -> None:
    """Make this process a probe: its first estimated training pass stops after `seconds` (None: off)."""
    global _probe_s
    _probe_s = seconds


def probe_epoch(name: str, seconds: float, passes: int, started: float) -> None:
    """FitLog's first epoch (training and validation, `seconds`) in a probe whose batches no progress
    loop timed (a closed-form or library epoch): the probe ends here."""
    if _probe_s is not None:
        left = None if _deadline is None else _deadline - time.monotonic() + seconds
        raise Probed(name, seconds, passes, started, left)


def _estimating(iterable: Iterable, total: int, name: str, max_epochs: int):
    global _estimate_for
    t0, said = time.perf_counter(), False
    left = None if _deadline is None else _deadline - time.monotonic()
    t_warm = None  # after the first WARMUP batches (one-off costs: allocation, lazy initialisation)
    for n, item in enumerate(iterable):
        now = time.perf_counter()
        elapsed = now - t0
        if n == WARMUP:
            t_warm = now
        # the warm-up batches as they were, the rest at the rate of the batches after them
        per_epoch = None if t_warm is None or n <= WARMUP else (t_warm - t0) + (now - t_warm) / (n - WARMUP) * (
            total - WARMUP)
        if _probe_s is not None and per_epoch is not None and now - t_warm >= _probe_s:
            raise Probed(name, per_epoch, max_epochs, t0, left)
        if not said and per_epoch is not None and elapsed >= ESTIMATE_AFTER_S:
            said, _estimate_for = True, None
            limit = "" if left is None else f"; --time-limit stops it after {_fmt_secs(left - elapsed)}"
            print(f"[{name}] estimate from the first {n} of {total} batches: ~{_fmt_secs(per_epoch)} of training "
                  f"per epoch, at most {max_epochs} epochs: up to ~{_fmt_secs(per_epoch * max_epochs)} plus "
                  f"validation (early stopping usually ends sooner){limit}", file=sys.stderr, flush=True)
        yield item
    if _probe_s is not None and total:  # a pass shorter than the probe: timed whole
        raise Probed(name, time.perf_counter() - t0, max_epochs, t0, left)


def _estimate_training(name: str | None = None, max_epochs: int = 0) -> None:
    """Ask the next training pass for an estimate of the whole training (None: no more)."""
    global _estimate_for
    _estimate_for = (name, max_epochs) if name is not None else None


def progress(iterable: Iterable, total: int | None = None, desc: str = "", enabled: bool = True):
    """A batch progress bar (rate and ETA) on stderr for loops that take a while: it appears after
    2 s on a terminal, after 30 s (then every 30 s) in a log file, so short loops stay quiet.
    Under torchrun only rank 0 shows one. A training pass ends early at the job's time limit;
    the first one of a fresh run also estimates the whole training from its first batches."""
    from tqdm.auto import tqdm

    if _deadline is not None or (_estimate_for and _in_training_pass):
        total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    if _estimate_for and _in_training_pass and total and enabled and distributed.is_main():
        iterable = _estimating(iterable, total, *_estimate_for)
    if _deadline is not None:
        iterable = _until_deadline(iterable)
    tty = sys.stderr.isatty()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        leave=False,
        disable=not enabled or not distributed.is_main(),
        file=sys.stderr,
        mininterval=0.5 if tty else 30.0,
        delay=2.0 if tty else 30.0,
    )
