"""Run records: one JSON file per (dataset, task, model, seed, prompt), written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench.io import atomic_write_json

RECORD_SCHEMA = 1
VERSIONED_PACKAGES = ("torch", "numpy", "scipy", "transformers", "implicit", "nltk", "rouge-score", "adapters", "open_clip_torch")


def _run_dir(results_dir: Path, kind: str, rec: dict) -> Path:
    model = rec["model"] + (f"+{rec['tag']}" if rec.get("tag") else "")
    return Path(results_dir) / kind / rec["dataset"] / rec["task"] / model


def _indexing(rec: dict) -> str:
    """"" for the default random indexing, else "__<indexing>": runs of one model under both
    indexings (which number items differently) must never share a record or a checkpoint."""
    return "" if rec.get("indexing", "random") == "random" else f"__{rec['indexing']}"


def record_path(results_dir: Path, rec: dict) -> Path:
    prompt = f"__{rec['prompt']}" if rec.get("prompt") else ""
    return _run_dir(results_dir, "runs", rec) / f"seed{rec['seed']}{prompt}{_indexing(rec)}.json"


def checkpoint_dir(results_dir: Path, rec: dict) -> Path:
    """Where an unfinished run keeps its resumable checkpoints (removed when it completes)."""
    return _run_dir(results_dir, "checkpoints", rec) / f"seed{rec['seed']}{_indexing(rec)}"


def lock_path(results_dir: Path, rec: dict) -> Path:
    """The lock a run holds while it trains a job and writes its records (beside its checkpoints)."""
    return _run_dir(results_dir, "checkpoints", rec) / f"seed{rec['seed']}{_indexing(rec)}.lock"


def describe_job(rec: dict) -> str:
    tag = f" +{rec['tag']}" if rec.get("tag") else ""
    idx = "" if rec.get("indexing", "random") == "random" else f" indexing={rec['indexing']}"
    return f"{rec['model']}{tag} · {rec['task']} · {rec['dataset']} · seed {rec['seed']}{idx}"


def write_record(results_dir: Path, rec: dict) -> Path:
    path = record_path(results_dir, rec)
    atomic_write_json(path, rec)
    return path


def load_records(results_dir: Path, dataset: str | None = None, task: str | None = None) -> list[dict]:
    root = Path(results_dir) / "runs"
    if dataset:
        root = root / dataset
        if task:
            root = root / task
    recs = []
    for p in sorted(root.rglob("*.json")) if root.exists() else []:
        try:
            rec = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            from bench.errors import DataFormatError

            raise DataFormatError(p, f"invalid JSON ({e.msg})", e.lineno) from None
        if task and rec.get("task") != task:
            continue
        rec["_path"] = str(p)
        recs.append(rec)
    return recs


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """HEAD of the checkout that holds this package, with '-dirty' when it has local changes."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
