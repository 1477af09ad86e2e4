"""`bench efficiency`: the paper's Table 5 question — what do VIP5's adapters save over full
fine-tuning? — measured at a chosen network shape (t5-small's by default) as ratios from one run.

A full training at t5-small's shape takes hours per epoch on a CPU, so this measures what Table
5's columns are made of: the same optimizer steps (the real training step,
`GenerativeRecommender.train_step`, on the same multitask batches) for each training strategy —
self-attention adapters, self- and cross-attention adapters, full fine-tuning — each in a fresh
process, so that each peak is its own. Per strategy: median seconds per step, trainable
parameters, the process's peak memory and the training's own share of it (the peak minus the
process's peak before the model was built: on a CPU the interpreter and libraries are most of a
process's peak and would hide the adapters' saving; the same definition as a run record's
`peak_memory_model_mb`). Ratios are against full fine-tuning.
Writes `<out>/efficiency_<dataset>_<shape>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.io import atomic_write_json, atomic_write_text
from bench.tasks import SEQUENTIAL

# strategy -> VIP5 config overrides (Table 5's rows)
STRATEGIES = {
    "self": {"train_mode": "adapters", "adapter_placement": "self"},
    "self+cross": {"train_mode": "adapters", "adapter_placement": "self+cross"},
    "full": {"train_mode": "full"},
}
LABELS = {"self": "Self-attention adapters", "self+cross": "Self- & cross-attention adapters",
          "full": "Full fine-tuning"}


def measure(strategy: str, dataset: str, data_root: str | None, shape: str, steps: int, batch: int,
            device: str, seed: int) -> dict:
    """In this process: build VIP5 for `strategy`, run 1 warm-up + `steps` optimizer steps on the
    first multitask batches of epoch 1 -> the figures of one row."""
    import numpy as np
    import torch

    from bench.config import build_config
    from bench.data import load_dataset
    from bench.run.worker import peak_memory
    from models.vip5 import VIP5, VIP5Config

    data = load_dataset(dataset, data_root)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    base = peak_memory(device)[0]  # as a run record's peak_memory_model_mb: the peak before the model exists
    torch.manual_seed(seed)
    over = {"backbone_size": shape, "backbone_init": "random", "batch_size": batch, **STRATEGIES[strategy]}
    m = VIP5(build_config(VIP5Config, over), data, task=SEQUENTIAL, device=device, seed=seed)
    samples = m._samples(np.random.default_rng(seed), m.render, m.train_tasks)
    batches = m._batches(samples)[: steps + 1]  # the same batches for every strategy (same seed)
    opt, sched, scaler, params = m.optimizer(len(batches))
    m.net.train()
    times, tokens = [], 0
    for i, idx in enumerate(batches):
        batch_prompts = [samples[j] for j in idx]
        t0 = time.perf_counter()
        m.train_step(m.net, batch_prompts, opt, sched, scaler, params)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        if i:  # the first step is a warm-up (allocations, kernel selection)
            times.append(time.perf_counter() - t0)
            tokens += sum(len(m.tok.encode(p.text)) for p in batch_prompts)
    peak, kind = peak_memory(device)
    trainable, total = m.num_params()
    return {"strategy": strategy, "s_per_step": statistics.median(times), "steps": len(times),
            "tokens_per_step": tokens / len(times), "trainable_params": trainable, "total_params": total,
            "peak_memory_mb": peak, "peak_memory_model_mb": peak - base, "memory_kind": kind,
            "torch_threads": torch.get_num_threads()}


def run(args) -> dict:
    rows = []
    for strategy in args.strategies:
        print(f"[efficiency] {LABELS[strategy]}: {args.steps} steps at the {args.shape} shape ...", flush=True)
        cmd = [sys.executable, "-m", "bench.studies.efficiency", "--one", strategy, "--dataset", args.dataset,
               "--shape", args.shape, "--steps", str(args.steps), "--batch", str(args.batch),
               "--device", args.device, "--seed", str(args.seed)]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"efficiency: the {strategy} measurement failed:\n{done.stderr.strip()[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    full = next((r for r in rows if r["strategy"] == "full"), None)
    for r in rows:
        r["trainable_pct"] = 100 * r["trainable_params"] / r["total_params"]
        if full:
            for key in ("s_per_step", "peak_memory_mb", "peak_memory_model_mb"):
                r[f"{key}_vs_full"] = r[key] / full[key]
    return {"dataset": args.dataset, "shape": args.shape, "device": args.device, "batch": args.batch,
            "seed": args.seed, "torch_threads": rows[0]["torch_threads"], "rows": rows}


def markdown(report: dict) -> str:
    from tabulate import tabulate

    head = ["training strategy", "s/step", "× full", "trainable %", "peak (MB)", "× full",
            "training's own peak (MB)", "× full"]
    body = [[LABELS[r["strategy"]], f"{r['s_per_step']:.3f}", _ratio(r, "s_per_step"), f"{r['trainable_pct']:.2f}",
             f"{r['peak_memory_mb']:.0f}", _ratio(r, "peak_memory_mb"), f"{r['peak_memory_model_mb']:.0f}",
             _ratio(r, "peak_memory_model_mb")] for r in report["rows"]]
    kind = report["rows"][0]["memory_kind"]
    return "\n".join([
        f"### Table 5 at the {report['shape']} shape: training strategies of VIP5 (efficiency) — {report['dataset']}",
        "", tabulate(body, head, tablefmt="github"), "",
        f"- One run of `python -m bench efficiency --dataset {report['dataset']} --shape {report['shape']}`: "
        f"{report['rows'][0]['steps']} optimizer steps per strategy after one warm-up step, batch {report['batch']} "
        f"(~{report['rows'][0]['tokens_per_step']:.0f} prompt tokens per step), the same multitask batches for every "
        f"strategy, each strategy in its own process; device {report['device']}, {report['torch_threads']} thread(s).",
        f"- s/step: median wall-clock seconds of one optimizer step (forward, backward, clipping, AdamW). "
        f"Peak: {kind}; the training's own peak is that minus the process's peak before the model "
        "was built. × full: ratio to full fine-tuning of the same network.",
        "- Random-init weights: time and memory do not depend on what the weights are.", ""])


def _ratio(row: dict, key: str) -> str:
    v = row.get(f"{key}_vs_full")
    return "–" if v is None else f"{v:.2f}"


def add_parser(sub) -> None:
    p = sub.add_parser("efficiency", help="Table 5 at a real network shape: adapters vs full fine-tuning, "
                                          "time per step and peak memory as ratios from one run")
    _arguments(p)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data)")
    p.add_argument("--shape", default="small", choices=["tiny", "small"], help="network shape (small = t5-small's)")
    p.add_argument("--steps", type=int, default=5, help="measured optimizer steps per strategy (after one warm-up)")
    p.add_argument("--batch", type=int, default=32, help="prompts per step (VIP5's default batch size)")
    p.add_argument("--strategies", default="self,self+cross,full", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--out", default="results/perf", help="folder for efficiency_<dataset>_<shape>.json / .md")


def cmd_efficiency(args) -> int:
    from bench.config import UsageError

    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown or not args.strategies:
        raise UsageError(f"--strategies: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(STRATEGIES)}")
    if args.steps < 1 or args.batch < 1:
        raise UsageError("--steps and --batch must be positive integers")
    report = run(args)
    out = Path(args.out)
    stem = out / f"efficiency_{args.dataset}_{args.shape}"
    atomic_write_json(stem.with_suffix(".json"), report)
    text = markdown(report)
    atomic_write_text(stem.with_suffix(".md"), text)
    print(text)
    print(f"written: {stem}.json, {stem}.md")
    return 0


def _main() -> None:
    p = argparse.ArgumentParser(description="one strategy's measurement (run by `bench efficiency`)")
    p.add_argument("--one", required=True, choices=list(STRATEGIES))
    _arguments(p)
    a = p.parse_args()
    print(json.dumps(measure(a.one, a.dataset, a.data_root, a.shape, a.steps, a.batch, a.device, a.seed)))


if __name__ == "__main__":
    _main()
