"""The CUDA path: mixed precision training steps, peak memory from torch.cuda.max_memory_allocated,
and short runs that write CUDA records (one GPU; two processes under torchrun with two GPUs).

Deselected by default (marker `gpu`) and skipped without a CUDA device; run them with
``pytest -m gpu tests/gpu`` or ``tests/gpu/check_cuda.sh``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MiB = 2**20


def _vip5(data, **over):
    from bench.config import build_config
    from models.vip5 import VIP5, VIP5Config

    cfg = build_config(VIP5Config, dict(VIP5.CONTRACT_OVERRIDES) | over)
    return VIP5(cfg, data, task="sequential", device="cuda", seed=0)


def _cli_sets(over: dict) -> list[str]:
    from models.vip5 import VIP5

    return [
        a for k, v in (dict(VIP5.CONTRACT_OVERRIDES) | over).items() if k != "epochs" for a in ("--set", f"{k}={v}")
    ]


def test_amp_forward_runs_in_bf16_where_supported_else_fp16(tiny):
    m = _vip5(tiny)
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    seen = []
    q = m.net.t5.encoder.block[0].layer[0].SelfAttention.q  # a frozen backbone matmul
    handle = q.register_forward_hook(lambda _mod, _inp, out: seen.append(out.dtype))
    batch = m._samples(m.rng, m.render, ["sequential"])[:8]
    ids, words, mask, feats = m._encode_inputs(batch)
    with m._autocast():
        loss = m.net(ids, words, mask, feats, m._encode_targets(batch))
    handle.remove()
    assert seen and seen[0] == expected
    assert torch.isfinite(loss) and loss.dtype == torch.float32  # the loss itself is computed in fp32


def test_amp_training_steps_update_only_trainable_weights(tiny):
    from bench.train import FitLog

    m = _vip5(tiny, epochs=2, seq_samples_per_user=2)
    before = {n: p.detach().clone() for n, p in m.net.named_parameters()}
    log = FitLog(None, "ndcg@10", verbose=False)
    m.fit(log)
    losses = [row["loss"] for row in log.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    # GradScaler is only needed (and only enabled) for fp16; bf16 has fp32's exponent range
    assert m._train_state["scaler"].is_enabled() == (not torch.cuda.is_bf16_supported())
    changed = {n for n, p in m.net.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in m.net.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    assert all(p.dtype == torch.float32 for p in m.net.parameters()), "autocast keeps fp32 master weights"


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_peak_memory_is_this_device_max_allocated(device):
    from bench.run.worker import peak_memory

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device) / MiB
    x = torch.empty(64 * MiB, dtype=torch.uint8, device=device)  # 64 MiB
    mem, kind = peak_memory(device)
    assert kind == "cuda_max_allocated" and mem >= base + 64
    del x
    torch.cuda.reset_peak_memory_stats(device)
    after, _ = peak_memory(device)
    assert after < mem - 63, "reset_peak_memory_stats starts a new peak (the worker does it before each model)"


def test_short_run_on_cuda_writes_a_record_with_cuda_memory(tiny_root, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--task", "sequential", "--dataset", "tiny", "--models", "vip5",
         "--epochs", "2", "--device", "auto", "--data-root", str(tiny_root), "--results-dir", str(results),
         *_cli_sets({})], capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    recs = [json.loads(p.read_text()) for p in sorted((results / "runs").rglob("*.json"))]
    assert len(recs) == 2  # one per evaluation prompt
    for rec in recs:
        assert rec["device"] == "cuda" and rec["memory_kind"] == "cuda_max_allocated"
        assert 0 < rec["peak_memory_mb"] < torch.cuda.get_device_properties(0).total_memory / MiB
        assert rec["world_size"] == 1 and rec["peak_memory_mb_per_rank"] is None and rec["config"]["amp"] is True


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_torchrun_on_two_gpus_uses_one_device_per_rank(tiny_root, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bench", "run",
         "--task", "sequential", "--dataset", "tiny", "--models", "vip5", "--epochs", "2", "--device", "cuda",
         "--data-root", str(tiny_root), "--results-dir", str(results), *_cli_sets({})],
        capture_output=True, text=True, timeout=900, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    recs = [json.loads(p.read_text()) for p in sorted((results / "runs").rglob("*.json"))]
    assert len(recs) == 2
    for rec in recs:
        assert rec["device"] == "cuda:0" and rec["world_size"] == 2 and rec["memory_kind"] == "cuda_max_allocated"
        assert len(rec["peak_memory_mb_per_rank"]) == 2 and all(m > 0 for m in rec["peak_memory_mb_per_rank"])
