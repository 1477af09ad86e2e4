"""Checks `bench run` makes before it starts any job, in the parent process.

- every command-line value (names, counts, device, results directory): a `UsageError`, one line
  naming the option and the fix, exit code 2;
- each job's data needs (a model's declared ``REQUIRES`` / ``REQUIRES_IF``, see bench/registry.py)
  against the dataset's manifest: a job that would fail is not started, and the plan says why
  and which command fixes it;
- run-level resume: a job whose records already exist for the same config, data and code
  (bench/run/fingerprint.py) is not trained again unless ``--rerun``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UsageError

MAX_SEED = 2**32 - 1  # numpy's seed range
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")  # one directory level: no separators, no leading dot


def check_plain_name(option: str, value: str | None, example: str) -> None:
    """A name that becomes a directory (dataset, tag): no separators, no '..', no leading dot."""
    if value is None:
        return
    if PLAIN_NAME.fullmatch(value) is None or ".." in value:
        raise UsageError(f"{option} {value!r}: not a plain name (letters, digits, '.', '_', '+', '-'; no '/' or '..', "
                         f"not starting with '.'); fix: e.g. {option} {example}")


def check_tag(tag: str | None) -> None:
    """A tag is part of a directory name (``<model>+<tag>``): any text without separators or a leading dot."""
    if not tag:  # none, or empty: no tag
        return
    if len(tag) > 150 or any(c in tag for c in "/\\\0") or tag.startswith("."):
        raise UsageError(f"--tag {tag!r}: it names a directory, so no '/', '\\' or leading '.' (at most 150 "
                         "characters); fix: e.g. --tag wide")


def check_counts(epochs: int | None, seeds: list[int]) -> None:
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs {epochs}: the maximum number of epochs must be a positive integer; "
                         "fix: --epochs 1 or more, or leave it out for each model's default")
    if not seeds:
        raise UsageError("--seeds: give at least one seed; fix: e.g. --seeds 1,2,3")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise UsageError(f"--seeds {','.join(map(str, seeds))}: seed {bad[0]} is out of range; "
                         f"fix: seeds from 0 to {MAX_SEED}, e.g. --seeds 1,2,3")


def check_device(device: str) -> None:
    """`--device cuda[:N]` only where CUDA (and device N) exists; torch is imported only for a cuda request."""
    if not device.startswith("cuda"):
        return
    from bench.train import resolve_device

    resolve_device(device)  # no CUDA: UsageError naming --device
    index = device.partition(":")[2]
    if index:
        import torch

        count = torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            raise UsageError(
                f"--device {device}: this machine has {count} CUDA device(s) (cuda:0 .. cuda:{count - 1}); "
                "fix: --device cuda:0, or auto"
            )


def check_results_dir(results_dir: str | Path) -> None:
    """Create the results directory and write a file there now, not after hours of training."""
    path = Path(results_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UsageError(f"--results-dir {results_dir}: not writable ({e.strerror or type(e).__name__}); "
                         "fix: --results-dir a directory you can write to") from None


# ---------------------------------------------------------------------------------------------- data needs

HAVE_NOT = {  # what a dataset lacks -> the command (or step) that gives it
    "features": "python -m bench features --dataset {ds} --encoder ViT-B-32 --weights PATH (or --from-vip5 DIR)",
    "attributes": "python -m bench data import DIR --name {ds} with a release whose items have attributes, "
                  "or leave the model out (--models ...)",
    "reviews": "python -m bench data import DIR --name {ds} with a release that has reviews, or leave the model out",
    "images": "put the item images in {path}/images/ (one <raw id>.png per item)",
}


def dataset_has(ds_dir: Path) -> dict[str, bool] | None:
    """What the dataset at `ds_dir` offers, from its manifest (and item list); None: not generated yet."""
    from bench.data.store import read_manifest

    if not (ds_dir / "manifest.json").exists():
        return None
    manifest = read_manifest(ds_dir)
    has_attrs = False
    items = ds_dir / "items.jsonl"
    if items.exists():
        with open(items, encoding="utf-8") as f:
            has_attrs = any(json.loads(line).get("attributes") for line in f if line.strip())
    return {"features": bool(manifest.get("features")), "attributes": has_attrs,
            "reviews": manifest.get("counts", {}).get("reviews", 0) > 0, "images": (ds_dir / "images").is_dir(),
            "_feature_sets": sorted(manifest.get("features") or {})}


def missing_data(model: str, cfg, dataset: str, ds_dir: Path, has: dict | None) -> str | None:
    """Why `model` (with config `cfg`) cannot run on the dataset, and the fix, in one line; None if it can."""
    from bench.registry import data_needs, get_model

    if has is None:  # the embedded dataset, generated on first use with everything
        return None
    for need in data_needs(get_model(model), cfg):
        if not has.get(need, True):
            fix = HAVE_NOT.get(need, "add it to the dataset").format(ds=dataset, path=ds_dir)
            switch = get_model(model).requires_if.get(need)
            if switch and need not in get_model(model).requires:
                fix += f", or --set {switch}=0 (without it)"
            return f"{model} needs item {need}, dataset {dataset!r} has none; fix: {fix}"
    encoder = getattr(cfg, "visual_encoder", None)
    if encoder and "features" in data_needs(get_model(model), cfg) and encoder not in has["_feature_sets"]:
        return (f"{model} reads feature set {encoder!r}, dataset {dataset!r} has: {', '.join(has['_feature_sets'])}; "
                f"fix: --set visual_encoder={has['_feature_sets'][0]}, or extract it with "
                f"python -m bench features --dataset {dataset} --encoder {encoder} --weights PATH")
    return None


# ---------------------------------------------------------------------------------------------- run-level resume

@dataclass
class Existing:
    """Records of one job already on disk: `current` when all of them match what the job would make now."""

    paths: list[Path]
    current: bool


def existing_records(results_dir: str, rec_key: dict, fingerprint: str) -> Existing | None:
    """The records a job (model, task, dataset, seed, tag, indexing in `rec_key`) left behind, if any.

    They are current when every one carries `fingerprint` and all the job's records (one per
    evaluation prompt: ``job_records``) are there; a job killed between two records is not."""
    from bench.results import record_path

    run_dir = record_path(results_dir, rec_key | {"prompt": None}).parent
    found = []
    for p in sorted(run_dir.glob(f"seed{rec_key['seed']}*.json")) if run_dir.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("seed") == rec_key["seed"] and rec.get("indexing", "random") == rec_key["indexing"]:
            found.append((p, rec))
    if not found:
        return None
    # a time-capped job is not finished: the same command goes on training it (from its checkpoint)
    current = (all(rec.get("job_fingerprint") == fingerprint and not rec.get("time_capped") for _, rec in found)
               and len(found) == found[0][1].get("job_records", 0))
    return Existing([p for p, _ in found], current)


def load_existing(paths: list[Path]) -> list[dict]:
    return [json.loads(p.read_text()) | {"_path": str(p)} for p in paths]


def describe(path: Path) -> str:
    """`path` relative to the working directory when it lies below it, else as it is."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


# ---------------------------------------------------------------------------------------------- the plan


def manifest_of(ds_dir: Path) -> dict | None:
    from bench.data.store import read_manifest

    return read_manifest(ds_dir) if (ds_dir / "manifest.json").exists() else None
