"""Exact resume (issue 16): a training interrupted after an epoch and started again — a new model,
every RNG re-seeded as a fresh worker process does — ends with the very same losses, validation
scores and weights as one never interrupted, for every iterative model. The checkpoint a kill leaves
is the same whether it hits mid-epoch, during validation or between epochs (training state is
written only once an epoch and its validation are done), so one snapshot stands for all three."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.config import build_config
from bench.evaluate import evaluate
from bench.model import TorchNetState, TrainingCheckpoint
from bench.registry import all_models
from bench.tasks import get_task
from bench.train import FitLog, seed_everything

NOT_ITERATIVE = {"pop", "explain_ref"}  # one closed-form / retrieval fit: nothing to resume
# resumable only once their own files register their optimizer (TrainingCheckpoint, `_train_state`)
NOT_YET: set[str] = set()
ITERATIVE = sorted(set(all_models()) - NOT_ITERATIVE)
CHEAPEST_TASK = {"p5": "sequential", "vip5": "sequential"}  # beam search on short prompts; direct lists 100 items


def _build(name: str, data, task: str):
    spec = all_models()[name]
    # 2 epochs whatever the model's contract settings, and no early stop between them
    over = dict(getattr(spec.cls, "CONTRACT_OVERRIDES", {})) | {"epochs": 2, "patience": 100}
    seed_everything(0)  # what bench/run/worker.py does before it builds the model
    return spec.cls(build_config(spec.config, over, strict=False), data, task=task, device="cpu", seed=0)


def _train(name: str, data, task: str, ckpt: Path, snapshot: Path | None = None) -> tuple[FitLog, object]:
    """Fit with checkpoints in `ckpt`; with `snapshot`, copy `ckpt` as it is when epoch 2's validation
    starts: what a kill at any point of epoch 2 (or just before it) leaves behind."""
    model = _build(name, data, task)
    variant = model.variants(task)[0] if hasattr(model, "variants") else None
    calls = []

    def validate():
        calls.append(1)
        if snapshot is not None and len(calls) == 2:
            shutil.copytree(ckpt, snapshot)
        return evaluate(model, data, task, "val", variant, limit=30).metrics

    log = FitLog(validate, get_task(task).monitor, name, verbose=False, checkpoint_dir=ckpt)
    model.fit(log)
    return log, model


def _weights(model, path: Path) -> dict[str, np.ndarray]:
    model.save(path)
    out = {}
    for p in sorted(path.rglob("*.pt")):
        for k, v in torch.load(p, map_location="cpu", weights_only=True).items():
            out[f"{p.name}/{k}"] = v.numpy()
    out |= {p.name: np.load(p) for p in sorted(path.rglob("*.npy"))}
    return out


def _curve(log: FitLog) -> list[tuple]:
    return [(row["epoch"], row["loss"], row.get("val"), row["steps"]) for row in log.history]


@pytest.mark.parametrize("name", ITERATIVE)
def test_a_resumed_training_equals_an_uninterrupted_one(name, tiny, tmp_path):
    if name in NOT_YET:
        pytest.xfail(f"{name} does not checkpoint its training state yet")
    task = CHEAPEST_TASK.get(name, sorted(all_models()[name].tasks)[0])
    whole, model = _train(name, tiny, task, tmp_path / "whole", snapshot=tmp_path / "killed")
    assert len(whole.history) == 2
    assert (tmp_path / "killed" / "log.json").exists(), "epoch 1 left a checkpoint"

    resumed, again = _train(name, tiny, task, tmp_path / "killed")
    assert _curve(resumed) == _curve(whole)  # epoch 1 taken over from the checkpoint, epoch 2 trained again
    assert resumed.best_epoch == whole.best_epoch and resumed.steps == whole.steps
    a, b = _weights(model, tmp_path / "a"), _weights(again, tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_every_iterative_model_is_resumable():
    """A new iterative model must checkpoint its training state (bench.model.TrainingCheckpoint)."""
    missing = [n for n in ITERATIVE if not hasattr(all_models()[n].cls, "save_training_state")]
    assert sorted(missing) == sorted(NOT_YET)


# ------------------------------------------------------------------ a kill while the checkpoint is written


class Toy(TrainingCheckpoint, TorchNetState):
    """Draws from every RNG a model may use: torch (data, dropout), NumPy's global one, Python's, its own."""

    def __init__(self):
        seed_everything(0)
        self.device, self.rng = "cpu", np.random.default_rng(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.5))

    def fit(self, log, epochs: int) -> None:
        opt = torch.optim.Adam(self.net.parameters(), lr=0.1)
        self._train_state = {"opt": opt}
        for _ in log.epochs(self, max_epochs=epochs, patience=1):
            shift = float(np.random.rand()) + random.random() + float(self.rng.random())
            loss = self.net(torch.randn(8, 4) + shift).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            log.loss(loss.item())


def _toy(ckpt: Path, epochs: int = 3, keep_last: bool = False) -> tuple[FitLog, Toy]:
    model = Toy()
    # a validation score that falls every epoch: with patience 1 the run stops after epoch 2 unless keep_last
    log = FitLog(lambda: {"m": -float(len(log.history))}, "m", verbose=False, checkpoint_dir=ckpt)
    log.keep_last = keep_last
    model.fit(log, epochs)
    return log, model


@pytest.mark.parametrize("where", ["bench.train.rng_state", "bench.io.atomic_write_json"])
def test_a_kill_while_the_checkpoint_is_written_resumes_from_the_epoch_before(where, tmp_path, monkeypatch):
    """Killed after epoch 2's model state is written but before its RNG state (or its log.json):
    log.json still names epoch 1's state directory, and the resumed run trains epoch 2 again."""
    whole, model = _toy(tmp_path / "whole", keep_last=True)
    module, attr = where.rsplit(".", 1)
    real, calls = getattr(__import__(module, fromlist=[attr]), attr), []

    def dies_on_epoch_2(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(where, dies_on_epoch_2)
        with pytest.raises(KeyboardInterrupt):
            _toy(tmp_path / "killed", keep_last=True)
    assert (tmp_path / "killed" / "epoch-2").is_dir()
    resumed, again = _toy(tmp_path / "killed", keep_last=True)
    assert _curve(resumed) == _curve(whole)
    assert all(
        torch.equal(a, b) for a, b in zip(model.net.state_dict().values(), again.net.state_dict().values(), strict=True)
    )
    assert sorted(p.name for p in (tmp_path / "killed").iterdir() if p.name.startswith("epoch-")) == ["epoch-3"]


def test_a_resumed_run_stops_as_the_uninterrupted_one_did(tmp_path):
    """A finished early-stopped run started again only restores its best epoch; a keep_last run whose
    score fell is not mistaken for one that had stopped."""
    stopped, _ = _toy(tmp_path / "stop", epochs=5)
    assert stopped.stopped_early and len(stopped.history) == 2
    again, _ = _toy(tmp_path / "stop", epochs=5)
    assert again.stopped_early and _curve(again) == _curve(stopped)

    ckpt = tmp_path / "last"
    _toy(ckpt, epochs=2, keep_last=True)  # as if killed after epoch 2 of 4
    resumed, _ = _toy(ckpt, epochs=4, keep_last=True)
    assert len(resumed.history) == 4 and not resumed.stopped_early


# ------------------------------------------------------------------ a real `bench run` killed with SIGKILL

REPO = Path(__file__).resolve().parents[2]
# small but real settings; P5 keeps its default dropout, so its torch RNG matters
KILLED_RUNS = {
    "sasrec": ("6", []),
    "p5": ("3", [f"--set={kv}" for kv in ("vocab_size=300", "beams=5", "val_queries=20", "seq_samples_per_user=2",
                                           "direct_samples_per_user=1", "train_candidates=20", "eval_batch_size=40")]),
}


def _bench_run(root: Path, model: str) -> list[str]:
    epochs, extra = KILLED_RUNS[model]
    return [sys.executable, "-m", "bench", "run", "--task", "sequential", "--dataset", "tiny", "--models", model,
            "--epochs", epochs, "--seeds", "1", "--jobs", "1", "--device", "cpu", "--data-root", str(root),
            "--results-dir", str(root / "results"), *extra]


def _kill_during_epoch_2(cmd: list[str], root: Path, env: dict) -> None:
    """Start `cmd`, wait for epoch 1's checkpoint (the job's own, or a multitask training's in the
    dataset cache), let half an epoch pass and SIGKILL the run and its worker."""
    with open(root / "killed.log", "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (logs := [*root.glob("results/checkpoints/**/log.json"),
                            *root.glob("tiny/cache/*/trained/*/checkpoint/log.json")]):
            assert proc.poll() is None, (root / "killed.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5 * json.loads(logs[0].read_text())["history"][0]["train_s"])
        assert proc.poll() is None, "the run finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _records(root: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((root / "results" / "runs").rglob("*.json"))}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(KILLED_RUNS))
def test_a_bench_run_killed_with_sigkill_resumes_to_the_same_metrics(model, tiny_root, tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for root in (whole, killed):  # each its own dataset cache: a multitask training is cached there
        shutil.copytree(tiny_root / "tiny", root / "tiny", ignore=shutil.ignore_patterns("trained"))
    subprocess.run(_bench_run(whole, model), cwd=REPO, env=env, check=True, capture_output=True)
    _kill_during_epoch_2(_bench_run(killed, model), killed, env)
    assert not _records(killed)
    done = subprocess.run(_bench_run(killed, model), cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming after epoch" in done.stderr

    a, b = _records(whole), _records(killed)
    assert a.keys() == b.keys() and a
    for name in a:
        assert b[name]["metrics"] == a[name]["metrics"], name
        assert _curve_of(b[name]) == _curve_of(a[name])
        assert a[name]["resumed_from_epoch"] is None and b[name]["resumed_from_epoch"] >= 1


def _curve_of(rec: dict) -> list[tuple]:
    return [(row["epoch"], row["loss"], row.get("val"), row["steps"]) for row in rec["history"]]
