"""The plan's estimate for a job that never ran here: `bench run` starts the job in a probe, a worker
process (bench/run/worker.py) that builds the model, times its first training batches and stops
(bench.progress.Probed). Its records and checkpoints go to a temporary directory that is deleted;
what it caches in the dataset (a tokenizer) is kept, keyed like any other run's.

A probe times the first stage of a training (a model's first estimated pass: S3-Rec's pre-training,
VIP5's P5 backbone when it is not cached yet); the later stages and the evaluation are not timed,
and the estimate says so."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

PROBE_S = 8.0  # seconds of training batches timed per job
PROBE_TIMEOUT_S = 180.0  # a job that has not reached a training batch by then gets no estimate
# probed by default (without --dry-run) on datasets at least this large: there an unannounced job can
# take hours, while on the embedded dataset the probes would add a tenth to a few-minute run
PROBE_MIN_INTERACTIONS = 50_000


@dataclass
class Estimate:
    seconds: float | None  # setup and training, at most the time limit; None: not known
    text: str  # for the plan line


def probe_jobs(plan, jobs: list[tuple[str, str, int]], cores: int, spec_of) -> list[Estimate]:
    """One estimate per (task, model, seed), probed `plan.parallel` at a time on `cores` cores;
    `spec_of(plan, task, model, seed, command)` is the worker's job spec (bench.run.plan._job_spec)."""
    parallel = max(1, min(plan.parallel, len(jobs)))
    threads = max(1, cores // parallel)
    print(f"timing the first batches of {len(jobs)} job(s) that never ran here ({parallel} side by side, "
          f"~{PROBE_S:.0f}s of batches each)...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        probe_plan = replace(plan, results_dir=str(Path(tmp) / "results"))
        with ThreadPoolExecutor(parallel) as pool:
            outs = list(pool.map(lambda nj: _probe(spec_of(probe_plan, *nj[1], ""), Path(tmp) / str(nj[0]), threads),
                                 enumerate(jobs)))
    return [describe_probe(out, plan.time_limit_s) for out in outs]


def _probe(spec: dict, tmp: Path, threads: int) -> dict:
    from bench.run.worker import start

    tmp.mkdir(parents=True)
    spec = spec | {"out": str(tmp / "out.json"), "probe_s": PROBE_S}
    t0 = time.perf_counter()
    # its output is not shown: the job itself prints the same (and its errors) when it runs
    proc = start(spec, tmp / "spec.json", threads, output="discard")
    try:
        proc.wait(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return {"timeout": True}
    except BaseException:  # Ctrl-C: no probe keeps running on its own
        proc.kill()
        raise
    out = tmp / "out.json"
    result = json.loads(out.read_text()) if out.exists() else {"ok": False}
    return result | {"wall_s": time.perf_counter() - t0}


def describe_probe(out: dict, time_limit_s: float | None) -> Estimate:
    """What a probe's outcome says about the whole job (its time limit included)."""
    from bench.progress import _fmt_secs as fmt

    if out.get("timeout"):
        return Estimate(None, f"no estimate: no training batch within {fmt(PROBE_TIMEOUT_S)} of its start")
    if not out.get("ok") or "probe" not in out:
        return Estimate(None, "no estimate: its probe failed (the job will say why)")
    p = out["probe"]
    if "whole_job_s" in p:
        return Estimate(p["whole_job_s"], f"~{fmt(p['whole_job_s'])}: the whole job ran while it was timed")
    first = p["per_pass_s"] * p["passes"]
    per = f"{p['per_pass_s']:.1f}s" if p["per_pass_s"] < 60 else fmt(p["per_pass_s"])
    what = f"{p['stage']}: {per} per epoch, at most {p['passes']}"
    if p["until_deadline_s"] is not None and first >= p["until_deadline_s"]:
        # the stage runs into its share of the limit (S3-Rec's pre-training: half), the rest uses the remainder
        return Estimate(time_limit_s, f"up to ~{fmt(time_limit_s)} (--time-limit) from its first batches ({what}); "
                                      "plus evaluation")
    return Estimate(p["setup_s"] + first, f"up to ~{fmt(p['setup_s'] + first)} from its first batches ({what}; "
                                          "early stopping usually ends sooner); plus evaluation")


def total_line(estimates: list[Estimate], parallel: int) -> str:
    """The plan's last line: the estimated training time of the whole run."""
    from bench.progress import _fmt_secs as fmt

    known = [e.seconds for e in estimates if e.seconds is not None]
    if not known:
        return ""
    unknown = len(estimates) - len(known)
    side = "" if parallel <= 1 else f", ~{fmt(sum(known) / parallel)} with {parallel} side by side"
    rest = "" if not unknown else f"; {unknown} job(s) without an estimate not counted"
    return f"estimated: ~{fmt(sum(known))} of training in all{side} (evaluation not counted{rest})"
