"""Several processes training one VIP5 under torchrun (DDP, gloo on CPU): per-rank shards, rank 0
alone validating, deciding when to stop and writing records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from bench import distributed
from bench.train import FitLog

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
# the contract test's cheapest VIP5 (models/vip5.py CONTRACT_OVERRIDES: tiny random-init backbone, 10
# beams), with small batches so that each of two processes takes 8 steps an epoch
DDP_FAST = {"batch_size": 4, "seq_samples_per_user": 2, "val_queries": 8}
EPOCHS, SEED = 3, 2022


@pytest.fixture(scope="module")
def micro_root(tmp_path_factory) -> Path:
    """Smaller than `tiny` (32 users): the torchrun test evaluates every test user on two prompts."""
    from bench.data.synthetic import generate

    root = tmp_path_factory.mktemp("data")
    generate(root, name="micro", n_users=32, n_items=120, seed=0)
    return root


@pytest.mark.parametrize("n,world", [(10, 2), (7, 2), (1, 4), (9, 3)])
def test_shards_cover_every_batch_with_equal_step_counts(monkeypatch, n, world):
    batches = list(range(n))
    shards = []
    for r in range(world):
        monkeypatch.setattr(distributed, "world_size", lambda w=world: w)
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shards.append(distributed.shard(batches))
    assert {len(s) for s in shards} == {distributed.shard_len(n)}, "every rank takes the same number of steps"
    assert set().union(*map(set, shards)) == set(batches)


class _Stub:
    def save(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)

    def load(self, path):
        pass


def _fitlog_rank(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    os.environ |= {"RANK": str(rank), "WORLD_SIZE": "2"}
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        scores = iter([0.5, 0.4, 0.3, 0.2, 0.1])  # only worse after epoch 1: patience 1 stops after epoch 2
        validated = []
        log = FitLog(lambda: validated.append(1) or {"ndcg@10": next(scores)}, "ndcg@10", verbose=False)
        epochs = list(log.epochs(_Stub(), max_epochs=5, patience=1))
        Path(out_dir, f"{rank}.json").write_text(json.dumps({"epochs": epochs, "validated": len(validated)}))
    finally:
        dist.destroy_process_group()


def test_rank_0_validates_alone_and_every_rank_stops_with_it(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mp.spawn(_fitlog_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    r0, r1 = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert r0 == {"epochs": [1, 2], "validated": 2}
    assert r1 == {"epochs": [1, 2], "validated": 0}


def test_torchrun_trains_vip5_on_two_processes_and_writes_each_record_once(micro_root, tmp_path):
    # imported here, not at the top: the spawned processes of the test above import this module
    from bench.config import build_config
    from bench.data import load_dataset
    from bench.train import seed_everything
    from models.vip5 import VIP5, VIP5Config

    over = dict(VIP5.CONTRACT_OVERRIDES) | DDP_FAST
    results, writes = tmp_path / "results", tmp_path / "writes.log"
    env = os.environ | {"OMP_NUM_THREADS": "1", "BENCH_PLUGINS": "ddp_write_spy", "PYTHONPATH": str(PLUGINS),
                        "WRITE_SPY_LOG": str(writes)}
    sets = [a for k, v in over.items() if k != "epochs" for a in ("--set", f"{k}={v}")]
    # `python -m torch.distributed.run` is what the `torchrun` script runs; --standalone picks a free port
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "bench",
            "run",
            "--task",
            "sequential",
            "--dataset",
            "micro",
            "--models",
            "vip5",
            "--epochs",
            str(EPOCHS),
            "--seeds",
            str(SEED),
            "--device",
            "cpu",
            "--data-root",
            str(micro_root),
            "--results-dir",
            str(results),
            *sets,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("## sequential") == 1 and proc.stdout.count("| vip5") == 2, "rank 0 alone prints the table"
    paths = sorted((results / "runs").rglob("*.json"))
    assert [p.name for p in paths] == ["seed2022__A-3.json", "seed2022__A-9.json"]
    assert sorted(writes.read_text().splitlines()) == ["0 A-3", "0 A-9"], "one write per record, by rank 0"
    # the job's lock file stays (empty: removing a lock file others may wait on would let two runs hold it)
    left = [p for p in (results / "checkpoints").rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert not left, "checkpoints removed at the end"
    rec = json.loads(paths[0].read_text())
    assert rec["world_size"] == 2 and rec["epochs"] == EPOCHS and rec["memory_kind"] == "cpu_peak_rss"
    assert len(rec["peak_memory_mb_per_rank"]) == 2 and all(m > 0 for m in rec["peak_memory_mb_per_rank"])
    assert all("val" in row for row in rec["history"]), "rank 0 validated every epoch"
    ddp = [row["loss"] for row in rec["history"]]

    # the same model, config and seed in one process
    seed_everything(SEED)
    data = load_dataset("micro", micro_root)
    single = VIP5(build_config(VIP5Config, over | {"epochs": EPOCHS}), data, task="sequential", device="cpu", seed=SEED)
    log = FitLog(None, "ndcg@10", verbose=False)
    single.fit(log)
    one = [row["loss"] for row in log.history]
    # same curve shape: both fall every epoch from about the same start (same initial weights;
    # two processes take half the steps per epoch, each on twice the data)
    assert all(b < a for a, b in pairwise(ddp)) and all(b < a for a, b in pairwise(one)), (ddp, one)
    assert abs(ddp[0] - one[0]) < 0.15 * one[0], (ddp, one)


def test_models_without_ddp_are_refused_under_torchrun_before_any_data_loads(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it
    root = tmp_path / "data"
    assert main(["run", "--task", "sequential", "--models", "vip5,sasrec", "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "under torchrun only p5, vip5 train" in err and "run sasrec without torchrun" in err
    assert not root.exists()
