"""Run records: one JSON file per (dataset, task, model, seed, prompt), written atomically.

A record's fields are declared once, in `RECORD_FIELDS`; `build_record` assembles a record in that
order from the values the worker passes, and `check_record` validates one when it is written
(`write_record`) and when it is read (`load_records`): a bad record is one line naming the file and
the field (DataFormatError)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from bench.errors import DataFormatError
from bench.io import atomic_write_json

RECORD_SCHEMA = 1
VERSIONED_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "transformers",
    "implicit",
    "nltk",
    "rouge-score",
    "adapters",
    "open_clip_torch",
)

# who supplies a field's value: the worker (build_record's argument), build_record itself (format and
# provenance of the writing process), or the model (its record_extras, merged after build_record)
WORKER, BUILDER, MODEL = "worker", "build_record", "model record_extras"


class Field(NamedTuple):
    name: str
    types: str  # JSON types, "|"-separated: integer, number, string, boolean, object, array, null
    required: bool  # False: older records (or models that do not write it) lack it
    meaning: str
    source: str = WORKER


# The order is the record's key order. Required: the fields that name the record's file and its job
# (record_path, describe_job) and those every table reads (metrics, cost, parameters, memory, device,
# config): every record ever written has them. The others are optional because committed records from
# before they were added lack them; where present, their type is checked all the same.
RECORD_FIELDS: tuple[Field, ...] = (
    Field("schema", "integer", False, "record format version (RECORD_SCHEMA)", BUILDER),
    Field("model", "string", True, "registered model name"),
    Field("task", "string", True, "task evaluated (direct, sequential, explanation, or a plugin's)"),
    Field("dataset", "string", True, "dataset name"),
    Field("seed", "integer", True, "training seed"),
    Field("prompt", "string|null", True, "evaluation prompt of this record (null: the model has none)"),
    Field("tag", "string|null", True, "run tag (bench run --tag, ablations): records sit under model+tag"),
    Field("metrics", "object", True, "test-split metrics"),
    Field("val_metrics", "object|null", False, "validation metrics at the best epoch (null: no validation)"),
    Field("monitor", "string", False, "validation metric early stopping follows (multitask: tasks' mean)"),
    Field("time_per_epoch_s", "number", True, "mean wall time of one training epoch"),
    Field("epochs", "integer", True, "epochs trained"),
    Field("best_epoch", "integer|null", False, "epoch whose weights were evaluated"),
    Field("optimizer_steps", "integer|null", False, "optimizer steps (null: closed-form or library fits)"),
    Field("still_improving", "boolean", False,
          "at its epoch cap with the best validation score at the last epoch: still improving when stopped"),
    Field("time_capped", "boolean", False,
          "stopped by --time-limit (its own training or VIP5's P5 backbone): more time would train on"),
    Field("time_limit_s", "number|null", False, "the --time-limit it ran under (null: none)"),
    Field("fit_time_s", "number", False, "wall time of training (fit), validation included"),
    Field("eval_time_s", "number", False, "wall time of this record's test evaluation"),
    Field("trainable_params", "integer", True, "trainable parameters"),
    Field("total_params", "integer", True, "all parameters"),
    Field("trainable_pct", "number", True, "trainable share of all parameters, in percent"),
    Field("peak_memory_mb", "number", True, "peak memory of the process in MiB (see memory_kind)"),
    Field("memory_kind", "string", True, "how peak memory was measured: cuda_max_allocated or cpu_peak_rss"),
    Field("peak_memory_model_mb", "number", False,
          "the model's own share of the peak (build, train, evaluate): peak minus the peak before it"),
    Field("world_size", "integer", False, "processes trained together (torchrun); time, memory: rank 0's"),
    Field("concurrent_jobs", "integer", False,
          "jobs side by side on the machine (bench run --jobs): epoch times compare only at equal figures"),
    Field("torch_threads", "integer", False, "torch threads of the process, for the same reason"),
    Field("peak_memory_mb_per_rank", "array|null", False, "every rank's training peak under torchrun"),
    Field("device", "string", True, "device it ran on (cpu, cuda:N)"),
    Field("indexing", "string", True, "item indexing (random, sequential): the two never share a file"),
    Field("candidates", "string|null", False, "the task's candidate protocol (null: against all items)"),
    Field("history_excluded", "boolean|null", False,
          "ranking against all items: whether the user's history was left out (null: other tasks, older records)"),
    Field("config", "object", True, "the model's full configuration"),
    Field("dataset_defaults", "object|null", False, "config keys the model's DATASET_DEFAULTS set for it"),
    Field("visual_features", "object|null", False,
          "feature set a visual model read, with its provenance (tables mark untrained image towers)"),
    Field("dataset_manifest", "object", False, "the dataset manifest's counts, seed, provenance, created"),
    Field("data_version", "string", False, "checksum of the dataset's files"),
    Field("job_fingerprint", "string", False,
          "config, data and code of the job: bench run skips it while all its records carry the current one"),
    Field("job_records", "integer", False, "records the job writes (one per evaluation prompt)"),
    Field("resumed_from_epoch", "integer|null", False,
          "epochs taken over from an interrupted run's checkpoint (null: a fresh start)"),
    Field("history", "array", False, "per-epoch training log (loss, time, validation)"),
    Field("per_query", "object|null", False, "compact per-query results for paired significance tests"),
    Field("versions", "object", False, "python and package versions", BUILDER),
    Field("git_commit", "string|null", False, "HEAD of the checkout, '-dirty' with local changes", BUILDER),
    Field("timestamp", "string", False, "when the record was made (UTC, ISO 8601)", BUILDER),
    Field("command", "string|null", False, "the command line that ran the job"),
    Field("decoding", "string", False, "VIP5/P5: how it ranked or wrote for the task", MODEL),
    Field("tokenizer", "object", False, "VIP5/P5: its real vocabulary", MODEL),
    Field("training", "object", False, "VIP5/P5: what trained it (tasks, backbone)", MODEL),
    Field("model_threads", "integer", False, "BPR-MF: the threads implicit trained with", MODEL),
    Field("deterministic", "boolean", False, "BPR-MF: whether that training is reproducible", MODEL),
)

_IS = {  # JSON's types as json.loads returns them; a bool is not a number here
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _json_type(v) -> str:
    return next((t for t in _IS if _IS[t](v)), type(v).__name__)


def record_problem(rec) -> str | None:
    """What is wrong with `rec` as a run record (the first problem, one line), or None.
    Fields that are not declared (a plugin model's record_extras) are let through unchecked."""
    if not isinstance(rec, dict):
        return f"a run record must be a JSON object, not {_json_type(rec)}"
    for f in RECORD_FIELDS:
        if f.name not in rec:
            if f.required:
                return f"run record lacks required field {f.name!r} ({f.meaning})"
            continue
        value = rec[f.name]
        if not any(_IS[t](value) for t in f.types.split("|")):
            shown = json.dumps(value, default=repr)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            expected = f.types.replace("|", " or ")
            return f"run record field {f.name!r} must be {expected}, not {_json_type(value)} {shown}"
    return None


def check_record(rec, path) -> None:
    """Raise DataFormatError (naming `path` and the field) unless `rec` is a valid run record."""
    problem = record_problem(rec)
    if problem:
        raise DataFormatError(path, problem)


def build_record(values: dict) -> dict:
    """A run record in the declared field order, from `values`: exactly the fields whose source is the
    worker (a missing or unknown one is a bug in the caller: TypeError). build_record adds the format
    version and the provenance; a model's record_extras are merged by the caller, after these."""
    expected = {f.name for f in RECORD_FIELDS if f.source == WORKER}
    missing, unknown = sorted(expected - values.keys()), sorted(values.keys() - expected)
    if missing or unknown:
        raise TypeError(f"build_record: missing fields {missing}, unknown fields {unknown}")
    # computed here, in this order, as the worker did: versions, then the commit, then the time
    own = {"schema": RECORD_SCHEMA, "versions": package_versions(), "git_commit": git_commit(),
           "timestamp": now_iso()}
    return {f.name: own[f.name] if f.source == BUILDER else values[f.name]
            for f in RECORD_FIELDS if f.source != MODEL}


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
    """Write `rec` to its file, after checking it: a bad record is refused before anything is written."""
    try:
        path = record_path(results_dir, rec)
    except (KeyError, TypeError, AttributeError):  # it lacks what names its file: the check says which field
        path = Path(results_dir) / "runs"
    check_record(rec, path)
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
            raise DataFormatError(p, f"invalid JSON ({e.msg})", e.lineno) from None
        check_record(rec, p)
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
