"""One model run in its own process: load data, build, fit, evaluate, write records.

The runner starts ``python -m bench.run.worker SPEC.json``: a separate process gives a clean
peak-memory figure and a crash cannot take the other models' results with it. The
worker writes its record paths (or its error) to ``SPEC.json``'s ``"out"`` file.
Under torchrun the runner calls `run_one` in each of its processes instead: they all train,
rank 0 alone evaluates and writes the records.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path

from bench.io import atomic_write_json
from bench.model import has_hook, variants_of
from bench.tasks import get_task


def peak_memory(device: str) -> tuple[float, str]:
    """Peak memory of this process in MiB, and how it was measured."""
    if device.startswith("cuda"):
        import torch

        # this process's device: under torchrun each rank has its own cuda:LOCAL_RANK
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    # Linux reports ru_maxrss in KiB: the peak resident set of this whole process
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_peak_rss"


def visual_features_used(cfg, data) -> dict | None:
    """Which feature set a visual model read, with its provenance (weights file hash or "random init"),
    so that tables can mark results that rest on untrained image towers."""
    if not hasattr(cfg, "visual_encoder") or not data.feature_sets or getattr(cfg, "image_tokens", 1) == 0:
        return None
    name = data.feature_set_name(cfg.visual_encoder)
    meta = data.manifest["features"][name]
    keep = ("encoder", "weights", "weights_sha256", "dim", "image_size")
    return {"name": name, **{k: meta[k] for k in keep if k in meta}}


def run_one(spec: dict) -> list[str]:
    """Train and evaluate one (model, task, seed) job; return the paths of its records.

    Rank 0 holds the job's lock (results/checkpoints/.../seedN.lock) from before the data loads
    until its records are written: a second run of the same job fails at once with one line."""
    from bench import distributed
    from bench.config import build_config
    from bench.io import exclusive_lock
    from bench.registry import check_model_task
    from bench.results import describe_job, lock_path
    from bench.train import resolve_device

    name, task = spec["model"], spec["task"]
    device = resolve_device(spec.get("device", "auto"))
    model_spec = check_model_task(name, task)
    overrides = dict(spec.get("overrides", {}))
    if spec.get("epochs") is not None:
        overrides["epochs"] = spec["epochs"]
    cfg = build_config(model_spec.config, overrides, strict=False)
    if spec.get("dataset_defaults"):
        shown = ", ".join(f"{k}={getattr(cfg, k)}" for k in spec["dataset_defaults"])
        print(f"[{name}] settings for {spec['dataset']} (the model's DATASET_DEFAULTS, --set wins): {shown}",
              file=sys.stderr, flush=True)
    key = _job_key(spec)
    if not distributed.is_main():
        return _train_and_record(spec, model_spec, cfg, device)
    with exclusive_lock(lock_path(spec["results_dir"], key), describe_job(key)):
        return _train_and_record(spec, model_spec, cfg, device)


def _job_key(spec: dict) -> dict:
    """The fields that name a job's records and checkpoints (bench/results.py)."""
    return {"model": spec["model"], "task": spec["task"], "dataset": spec["dataset"], "seed": spec["seed"],
            "tag": spec.get("tag") or None, "indexing": spec.get("indexing", "random")}


def _train_and_record(spec: dict, model_spec, cfg, device: str) -> list[str]:
    import torch

    from bench import distributed
    from bench.config import config_dict
    from bench.data import load_dataset
    from bench.evaluate import evaluate
    from bench.progress import set_time_limit
    from bench.results import checkpoint_dir, write_record
    from bench.run.fingerprint import job_fingerprint
    from bench.train import FitLog, seed_everything

    name, task, seed = spec["model"], spec["task"], spec["seed"]
    seed_everything(seed)
    data = load_dataset(spec["dataset"], spec.get("data_root"), indexing=spec.get("indexing", "random"))
    if task not in data.tasks:
        raise RuntimeError(f"dataset {data.name!r} has no {task!r} task (it has: {', '.join(data.tasks)})")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    # the process's peak before the model exists (interpreter, libraries, data): on CPU it dominates a
    # tiny model's peak RSS, so records also carry the model's own share (peak minus this)
    base_mem = peak_memory(device)[0]
    # what bench run compares to skip this job next time: taken before the model can touch its config
    fingerprint = job_fingerprint(model=name, cls=model_spec.cls, task=task, config=config_dict(cfg),
                                  manifest=data.manifest, indexing=data.indexing, tag=spec.get("tag"), device=device)

    set_time_limit(spec.get("time_limit_s"))  # from here: a model may train while it is built (VIP5's P5 backbone)
    model = model_spec.cls(cfg, data, task=task, device=device, seed=seed)
    if distributed.rank() > 0:  # weights start alike on every rank (seeded above); dropout masks need not
        torch.manual_seed(seed + distributed.rank())
    variants = variants_of(model, task)
    val_limit = getattr(cfg, "val_queries", None)  # slow (generative) models validate on a fixed subset
    # per-run checkpoints: an interrupted run started again with the same command resumes
    ckpt_dir = checkpoint_dir(spec["results_dir"], _job_key(spec) | {"dataset": data.name, "indexing": data.indexing})
    # a checkpoint that does not load is moved aside here (one warning line), so the job starts from scratch
    # and one from another config, data or code (the directory is named by model, task and seed only)
    if distributed.is_main():
        checkpoint_epochs(ckpt_dir, name, fingerprint)
    distributed.barrier()
    log = FitLog(
        lambda: evaluate(model, data, task, "val", variants[0], limit=val_limit).metrics,
        get_task(task).monitor,
        name=name,
        checkpoint_dir=ckpt_dir,
    )
    t0 = time.perf_counter()
    model.fit(log)
    # under torchrun: every rank's training peak (rank 0's also covers validation); then rank 0 alone goes on
    rank_peaks = distributed.gather(peak_memory(device)[0]) if distributed.active() else None
    if not distributed.is_main():
        return []
    fit_s = time.perf_counter() - t0
    run = {"spec": spec, "cfg": cfg, "data": data, "model": model, "log": log,
           "fit_s": fit_s, "base_mem": base_mem, "rank_peaks": rank_peaks, "device": device,
           "n_records": len(variants), "fingerprint": fingerprint,
           # what FitLog took over: also a multitask training's checkpoint, kept in the dataset's cache
           # (models/shared.py)
           "resumed": log.resumed_from_epoch}
    paths = []
    for variant in variants:
        t1 = time.perf_counter()
        test = evaluate(model, data, task, "test", variant, per_query=True)
        rec = _record(run, variant, test, time.perf_counter() - t1)
        paths.append(str(write_record(spec["results_dir"], rec)))
    if not log.time_capped:  # complete: its records replace the checkpoints (a capped run goes on from them)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return paths


FINGERPRINT_FILE = "job_fingerprint.txt"  # in a checkpoint directory: the job (config, data, code) it belongs to


def checkpoint_epochs(ckpt_dir: Path, name: str, fingerprint: str | None = None) -> int | None:
    """Epochs the checkpoint of an interrupted run holds (None: no checkpoint). One that does not load
    (truncated, or a pickle that is not plain tensors: nothing in it runs, weights_only=True), or that
    another config, data or code wrote (`fingerprint`), is moved aside, not deleted, with a one-line
    warning naming it, and the job starts from scratch. Then the directory is stamped with `fingerprint`."""
    epochs = _loadable_epochs(ckpt_dir, name, fingerprint)
    if fingerprint is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (ckpt_dir / FINGERPRINT_FILE).write_text(fingerprint)
    return epochs


def _move_aside(ckpt_dir: Path, name: str, kind: str, why: str) -> None:
    import datetime

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = ckpt_dir.with_name(f"{ckpt_dir.name}.{kind}-{stamp}")
    ckpt_dir.rename(aside)
    print(f"warning: [{name}] checkpoint {ckpt_dir} {why}; moved aside to {aside}; training starts from scratch",
          file=sys.stderr, flush=True)


def _loadable_epochs(ckpt_dir: Path, name: str, fingerprint: str | None) -> int | None:
    import warnings

    import numpy as np
    import torch

    if not ckpt_dir.is_dir():
        return None
    stamp = ckpt_dir / FINGERPRINT_FILE
    if fingerprint is not None and (ckpt_dir / "log.json").exists() and (
            not stamp.exists() or stamp.read_text().strip() != fingerprint):
        _move_aside(ckpt_dir, name, "other-job", "was written by another config, data or code")
        return None
    try:
        log = ckpt_dir / "log.json"
        epochs = len(json.loads(log.read_text())["history"]) if log.exists() else None
        for p in sorted(ckpt_dir.rglob("*.pt")):
            with warnings.catch_warnings():  # torch's notes on odd pickles: the one line below says enough
                warnings.simplefilter("ignore")
                torch.load(p, map_location="cpu", weights_only=True)
        for p in sorted(ckpt_dir.rglob("*.npy")):
            np.load(p, allow_pickle=False)
        return epochs
    except Exception as e:  # noqa: BLE001 — whatever is wrong with it, it cannot be resumed from
        why = (str(e).strip().splitlines() or [""])[0][:160]
        _move_aside(ckpt_dir, name, "unreadable", f"does not load ({type(e).__name__}: {why})")
        return None


def _record(run: dict, variant: str | None, test, eval_s: float) -> dict:
    """One run record: metrics, efficiency figures, config, data and code provenance (bench/results.py's
    build_record puts them in the declared order; write_record checks them)."""
    import torch

    from bench import distributed
    from bench.config import config_dict
    from bench.progress import job_time_capped
    from bench.results import build_record
    from bench.run.fingerprint import data_version
    from bench.significance import per_query_field

    spec, cfg, data, model, log, device = run["spec"], run["cfg"], run["data"], run["model"], run["log"], run["device"]
    name, task = spec["model"], spec["task"]
    trainable, total = model.num_params()
    val = log.history[log.best_epoch - 1].get("val") if log.best_epoch else None
    mem, mem_kind = peak_memory(device)
    # each field's meaning is declared once, in bench/results.py's RECORD_FIELDS (build_record adds the
    # format version and provenance)
    rec = build_record({
        "model": name,
        "task": task,
        "dataset": data.name,
        "seed": spec["seed"],
        "prompt": variant,
        "tag": spec.get("tag") or None,
        "metrics": test.metrics,
        "val_metrics": val,
        "monitor": log.monitor,
        "time_per_epoch_s": log.time_per_epoch_s,
        "epochs": len(log.epoch_times),
        "best_epoch": log.best_epoch,
        "optimizer_steps": log.steps,
        "still_improving": log.still_improving,
        "time_capped": job_time_capped(),
        "time_limit_s": spec.get("time_limit_s"),
        "fit_time_s": run["fit_s"],
        "eval_time_s": eval_s,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": 100.0 * trainable / total if total else 0.0,
        "peak_memory_mb": mem,
        "memory_kind": mem_kind,
        "peak_memory_model_mb": mem - run["base_mem"],  # base_mem: the process's peak before the model
        "world_size": distributed.world_size(),
        "concurrent_jobs": spec.get("concurrent_jobs", 1),
        "torch_threads": torch.get_num_threads(),
        "peak_memory_mb_per_rank": run["rank_peaks"],
        "device": device,
        "indexing": data.indexing,
        "candidates": get_task(task).candidates,
        "history_excluded": data.history_excluded if get_task(task).ranks_all_items else None,
        "config": config_dict(cfg),
        "dataset_defaults": spec.get("dataset_defaults") or None,
        "visual_features": visual_features_used(cfg, data),
        "dataset_manifest": {k: data.manifest.get(k) for k in ("counts", "seed", "provenance", "created")},
        "data_version": data_version(data.manifest),
        "job_fingerprint": run["fingerprint"],
        "job_records": run["n_records"],
        "resumed_from_epoch": run["resumed"],
        "history": log.history,
        "per_query": per_query_field(test),
        "command": spec.get("command"),
    })
    if has_hook(model, "record_extras"):  # e.g. VIP5/P5: decoding, real vocabulary, which training
        rec |= model.record_extras(task)
    return rec


def start(spec: dict, spec_path: Path, threads: int | None, output: str = "inherit"):
    """Start ``python -m bench.run.worker SPEC.json`` for `spec` (written to `spec_path`), with `threads`
    torch threads unless the user set OMP_NUM_THREADS: the one way the runner and the plan's probes
    (bench/run/probe.py) start a job's process. `output`: "inherit" (our stderr), "pipe" (stderr
    piped, for relaying) or "discard" (stdout and stderr). Returns the Popen."""
    import os
    import subprocess

    spec_path.write_text(json.dumps(spec))
    env = os.environ.copy()
    if threads is not None and "OMP_NUM_THREADS" not in env:  # a user's own setting wins
        env["OMP_NUM_THREADS"] = str(threads)
    streams = {"inherit": {}, "pipe": {"stderr": subprocess.PIPE},
               "discard": {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}}[output]
    return subprocess.Popen([sys.executable, "-m", "bench.run.worker", str(spec_path)], env=env, **streams)


def main(argv: list[str]) -> int:
    from bench.progress import Probed, probe_after

    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    t0 = time.perf_counter()
    probe_after(spec.get("probe_s"))  # a probe (bench/run/probe.py) stops after timing its first batches
    try:
        paths = run_one(spec)
        # a probe whose job had no estimated training pass (a closed-form fit) ran whole
        out = {"ok": True, "records": paths} if not spec.get("probe_s") else {
            "ok": True, "probe": {"whole_job_s": time.perf_counter() - t0}}
        atomic_write_json(Path(spec["out"]), out)
        return 0
    except Probed as p:
        atomic_write_json(Path(spec["out"]), {"ok": True, "probe": {
            "stage": p.name, "setup_s": p.pass_started - t0, "per_pass_s": p.per_pass_s, "passes": p.passes,
            "until_deadline_s": p.until_deadline}})
        return 0
    except BaseException as e:  # noqa: BLE001 — reported to the runner, which shows it in the table
        from bench.errors import BenchError

        if isinstance(e, BenchError) and not spec.get("verbose"):  # expected: one line, no traceback
            print(f"error: {e}", file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
        atomic_write_json(Path(spec["out"]), {"ok": False, "error": f"{type(e).__name__}: {e}"})
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
