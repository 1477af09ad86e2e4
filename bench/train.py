"""Training helpers shared by models: the epoch loop with validation and early stopping
(`FitLog`), the job's time limit, progress bars, seeding and device choice."""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bench import distributed
from bench.progress import (
    _estimate_training,
    _fmt_secs,
    _mark_job_time_capped,
    _set_training_pass,
    pass_was_cut,
    probe_epoch,
    time_is_up,
)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The global RNGs' state for a checkpoint: Python's and NumPy's legacy generator as JSON
    text, torch's (CPU, and every CUDA device in use) as byte tensors, so that the file loads
    with torch.load(weights_only=True)."""
    import torch

    version, internal, gauss = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state()
    out = {"python": json.dumps([version, list(internal), gauss]),
           "numpy": json.dumps([name, key.tolist(), int(pos), int(has_gauss), float(cached)]),
           "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    """Put back what `rng_state` took."""
    import torch

    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = json.loads(state["numpy"])
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from bench.errors import UsageError

        raise UsageError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
    return device


def stop_rule(max_epochs: int, patience: int, min_epochs: int | None = None) -> tuple[int, Callable[[int], int]]:
    """Early stopping that a first-epoch peak cannot fool: (the first epoch at which a stop is
    allowed, patience as a function of the best epoch so far).

    A model that learns item popularity first often validates best after epoch 1 and then
    dips before its factors become informative (BPR on a sparse catalogue), so stopping is
    allowed only after `min_epochs` (default: `MIN_EPOCHS_FRACTION` of the cap, at least 1),
    and the run waits at least `RELATIVE_PATIENCE` x its best epoch without improvement (a
    run whose best epoch is late is slow: a fixed small patience would cut it short).
    """
    floor = max(1, math.ceil(MIN_EPOCHS_FRACTION * max_epochs)) if min_epochs is None else max(1, min_epochs)
    return min(floor, max_epochs), lambda best_epoch: max(patience, math.ceil(RELATIVE_PATIENCE * (best_epoch or 0)))


MIN_EPOCHS_FRACTION = 0.1
RELATIVE_PATIENCE = 0.25


class FitLog:
    """Drives the epoch loop of an iterative model: times each training epoch, validates after
    it, keeps the best checkpoint (by `monitor`, higher is better), stops when there has been
    no improvement for `patience` epochs (at least a quarter of the best epoch, and never
    before a tenth of the cap: see `stop_rule`) and restores the best state at the end.

    Under torchrun (several processes, one model) only rank 0 validates, prints and writes
    checkpoints; its stop decision is broadcast so that every rank leaves the loop together.

    Usage in a model's ``fit``::

        for epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            loss = ...one pass over the training data...
            log.loss(loss)
    """

    def __init__(
        self,
        validate: Callable[[], dict[str, float]] | None,
        monitor: str,
        name: str = "model",
        verbose: bool = True,
        checkpoint_dir: str | Path | None = None,
    ):
        self.validate = validate
        self.monitor = monitor
        self.name = name
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.epoch_times: list[float] = []
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_score = -float("inf")
        self.steps: int | None = None  # optimizer steps, for models that report them (add_steps)
        self.max_epochs: int | None = None
        self.stopped_early = False
        # run the whole schedule and keep the last epoch (a fixed-budget training such as the
        # paper's multitask P5/VIP5) instead of stopping early and restoring the best one
        self.keep_last = False
        self.stop_policy: dict | None = None  # what epochs() stopped by (patience, min_epochs, relative_patience)
        # epochs an interrupted training had completed when epochs() took over its checkpoint (None: from scratch)
        self.resumed_from_epoch: int | None = None
        self.time_capped = False  # stopped by the job's time limit (`bench run --time-limit`)
        self._loss: float | None = None

    def add_steps(self, n: int) -> None:
        self.steps = (self.steps or 0) + int(n)

    @property
    def still_improving(self) -> bool:
        """Ran to its epoch cap, or was stopped by the time limit, with its best validation score at
        the last epoch: more training would probably have helped (the tables flag such rows)."""
        scores = [row["val"][self.monitor] for row in self.history if self.monitor in row.get("val", {})]
        capped = not self.stopped_early and (
            self.time_capped or (bool(self.max_epochs) and len(self.history) >= self.max_epochs))
        return capped and len(scores) > 1 and len(scores) == len(self.history) and scores[-1] >= max(scores)

    def state(self) -> dict:
        """What a finished training leaves behind for a job that reuses it (models/shared.py)."""
        return {"history": self.history, "best_epoch": self.best_epoch, "best_score": self.best_score,
                "steps": self.steps, "max_epochs": self.max_epochs, "stopped_early": self.stopped_early,
                "monitor": self.monitor, "keep_last": self.keep_last, "stop_policy": self.stop_policy,
                "time_capped": self.time_capped}

    def adopt(self, state: dict) -> None:
        """Take over a finished training's log (its epochs, times and validation curve)."""
        self.history, self.best_epoch, self.best_score = state["history"], state["best_epoch"], state["best_score"]
        self.steps, self.max_epochs, self.stopped_early = state["steps"], state["max_epochs"], state["stopped_early"]
        self.monitor, self.keep_last = state.get("monitor", self.monitor), state.get("keep_last", False)
        self.stop_policy = state.get("stop_policy")
        self.time_capped = state.get("time_capped", False)
        self.epoch_times = [row["train_s"] for row in self.history]

    def loss(self, value: float) -> None:
        self._loss = float(value)

    def will_resume(self, model) -> bool:
        """Whether `epochs` will go on from an interrupted run's checkpoint: work a model does before its
        epoch loop (S3-Rec's pre-training) is then superseded by the checkpoint's state and can be skipped."""
        return (self.checkpoint_dir is not None and hasattr(model, "save_training_state")
                and (Path(self.checkpoint_dir) / "log.json").exists())

    def say(self, msg: str) -> None:
        if self.verbose and distributed.is_main():
            print(f"[{self.name}] {msg}", file=sys.stderr, flush=True)

    def epochs(self, model, max_epochs: int, patience: int, min_epochs: int | None = None) -> Iterator[int]:
        """Yield epoch numbers (1-based); the model trains one epoch per iteration. `min_epochs`
        None = the default floor of `stop_rule`.

        With ``checkpoint_dir`` set, the best checkpoint and this log's state are kept there,
        and a model with ``save_training_state``/``load_training_state`` (network, optimizer,
        schedule, its own generator: bench.model.TrainingCheckpoint) is checkpointed after every
        epoch together with the global RNGs (Python, NumPy, torch): an interrupted run started
        again with the same directory resumes after its last completed epoch and goes on exactly
        as the uninterrupted run would have. Whatever the model draws before its epoch loop (its
        first samples, a pre-training) is drawn again and then superseded by the checkpoint.
        """
        if max_epochs < 1:
            raise ValueError("max_epochs must be >= 1")
        self.max_epochs = max_epochs
        min_epochs, patience_at = stop_rule(max_epochs, patience, min_epochs)
        self.stop_policy = {"patience": patience, "min_epochs": min_epochs, "relative_patience": RELATIVE_PATIENCE}
        main = distributed.is_main()
        validating = self.validate is not None and main
        with tempfile.TemporaryDirectory(prefix="bench-best-") as tmp:
            ckpt = Path(self.checkpoint_dir) if self.checkpoint_dir else Path(tmp)
            # every rank resumes from rank 0's checkpoint (one node: a shared file system)
            # an optional hook (bench/model.py OPTIONAL_METHODS), asked by name: has_hook lives in
            # bench.model, which imports this module (FitLog), so importing it here would be a cycle
            resumable = self.checkpoint_dir is not None and hasattr(model, "save_training_state")
            best = ckpt / "best"
            bad, first = 0, 1
            if resumable and (ckpt / "log.json").exists():
                bad, first = self._resume(model, ckpt, max_epochs, min_epochs, patience_at)
            t_start = time.perf_counter()
            epoch = first - 1
            _estimate_training(self.name if first == 1 and max_epochs > 1 else None, max_epochs)
            for epoch in range(first, max_epochs + 1):
                self._loss = None
                t0 = time.perf_counter()
                _set_training_pass(True)
                try:
                    yield epoch
                finally:
                    _set_training_pass(False)
                _estimate_training(None)  # one estimate per training, from its first pass only
                self.epoch_times.append(time.perf_counter() - t0)
                row = {"epoch": epoch, "loss": self._loss, "train_s": self.epoch_times[-1], "steps": self.steps}
                # a cut epoch is checkpointed too: one longer than the time limit must not be redone for ever
                cut = row["cut"] = distributed.broadcast(pass_was_cut())
                score = None
                if validating:
                    row["val"] = self.validate()
                    score = row["val"][self.monitor]
                self._add_row(row, t0, max_epochs - first + 1 if epoch == first else None)
                if score is None or score > self.best_score:
                    self.best_score, self.best_epoch = (score if score is not None else self.best_score), epoch
                    if validating:
                        model.save(best)
                    bad = 0
                else:
                    bad += 1
                stop = distributed.broadcast(bad >= patience_at(self.best_epoch) and epoch >= min_epochs
                                             and not self.keep_last)
                # an epoch cut short counts even when it is the last: that training is not complete
                capped = distributed.broadcast(time_is_up() and epoch < max_epochs) or cut
                if resumable:  # a time-capped run is not finished: the same command goes on from here
                    self._checkpoint(model, ckpt, epoch, bad, stop)
                self._say_epoch(epoch, max_epochs, epoch - first + 1, time.perf_counter() - t_start, score)
                if stop:
                    self.stopped_early = True
                    self.say(f"early stop: no improvement for {bad} epochs (best epoch {self.best_epoch})")
                    break
                if capped:
                    self.time_capped = True
                    _mark_job_time_capped()
                    more = f"goes on with epoch {epoch + 1}: this one was cut" if cut else "continues from here"
                    self.say(f"time limit reached: stopped at epoch {epoch} of {max_epochs} (the same command {more})")
                    break
            last = len(self.history)
            if self.keep_last:
                self.best_epoch = last  # the kept model; validation only draws the learning curve
            elif validating and self.best_epoch is not None and self.best_epoch != last:
                model.load(best)
                self.say(f"restored best epoch {self.best_epoch}")

    def _add_row(self, row: dict, started: float, probe_passes: int | None) -> None:
        """Keep an epoch's row. After this run's first epoch (`probe_passes` of them at most), a probe
        (bench/run/probe.py) whose batch loop no progress bar timed ends here, validation included."""
        self.history.append(row)
        if probe_passes is not None:
            probe_epoch(self.name, time.perf_counter() - started, probe_passes, started)

    def _say_epoch(self, epoch: int, max_epochs: int, done: int, elapsed: float, score: float | None) -> None:
        """The epoch's progress line: loss, validation score (and the best so far), the epoch's time,
        `elapsed` since this loop started and the ETA from it: `done` counts only the epochs run by
        this loop, not those a resumed run took over from its checkpoint."""
        eta = elapsed / done * (max_epochs - epoch)
        loss_s = "" if self._loss is None else f" loss {self._loss:.4f}"
        val_s = ("" if score is None
                 else f" val {self.monitor} {score:.4f} (best {self.best_score:.4f} @ {self.best_epoch})")
        self.say(
            f"epoch {epoch}/{max_epochs}{loss_s}{val_s} {self.epoch_times[-1]:.1f}s/epoch "
            f"elapsed {_fmt_secs(elapsed)} ETA <= {_fmt_secs(eta)}"
        )

    def _checkpoint(self, model, ckpt: Path, epoch: int, bad: int, stop: bool) -> None:
        """After an epoch and its validation: the model's training state and each rank's RNG state
        into a directory of their own, then log.json naming it, written last (atomically): a kill at
        any moment leaves a log.json and a state of one and the same epoch."""
        from bench.io import atomic_torch_save, atomic_write_json

        state = ckpt / f"epoch-{epoch}"
        if distributed.is_main():
            state.mkdir(parents=True, exist_ok=True)
            model.save_training_state(state)
        # every rank's own: under torchrun each one draws its own dropout masks
        atomic_torch_save(state / f"rng-rank{distributed.rank()}.pt", rng_state())
        distributed.barrier()
        if not distributed.is_main():
            return
        atomic_write_json(ckpt / "log.json", {"history": self.history, "best_epoch": self.best_epoch,
                                              "best_score": self.best_score, "bad": bad, "steps": self.steps,
                                              "stopped_early": stop, "state": state.name})
        for old in ckpt.iterdir():  # earlier epochs' states (and "last", the layout before epoch directories)
            if old.is_dir() and old != state and (old.name.startswith("epoch-") or old.name == "last"):
                shutil.rmtree(old, ignore_errors=True)

    def _resume(self, model, ckpt: Path, max_epochs: int, min_epochs: int, patience_at) -> tuple[int, int]:
        """Take over an interrupted run's checkpoint (its log, the model's training state, this rank's
        RNG state) -> (epochs without improvement, the first epoch still to run)."""
        import torch

        st = json.loads((ckpt / "log.json").read_text())
        self.history, self.best_epoch, self.best_score, bad = (
            st["history"],
            st["best_epoch"],
            st["best_score"],
            st["bad"],
        )
        self.steps = st.get("steps")
        self.epoch_times = [row["train_s"] for row in self.history]
        state = ckpt / st.get("state", "last")  # "last": a checkpoint written before epoch directories
        model.load_training_state(state)
        rng = state / f"rng-rank{distributed.rank()}.pt"
        if rng.exists():  # restored last: whatever the model drew while it was built is superseded
            set_rng_state(torch.load(rng, map_location="cpu", weights_only=True))
        done = self.resumed_from_epoch = len(self.history)
        self.say(f"resuming after epoch {done} from {ckpt}")
        stopped = st.get("stopped_early",
                         bad >= patience_at(self.best_epoch) and done >= min_epochs and not self.keep_last)
        if stopped or done >= max_epochs:
            self.stopped_early = bool(stopped)
            return bad, max_epochs + 1  # it had finished; only the best state is restored
        return bad, done + 1

    def single_fit(self, seconds: float) -> None:
        """For non-iterative models (one closed-form or library fit): record it as one epoch."""
        self.epoch_times.append(seconds)
        self.history.append({"epoch": 1, "train_s": seconds})
        self.best_epoch = 1

    @property
    def time_per_epoch_s(self) -> float:
        return float(np.mean(self.epoch_times)) if self.epoch_times else 0.0
