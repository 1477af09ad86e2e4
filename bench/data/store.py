"""The canonical on-disk dataset format: writing (importers, generator) and validated loading.

A dataset is a directory ``<data root>/<name>/``::

    manifest.json        counts, provenance, seed, tasks, feature sets, sha256 of every file
    users.jsonl          {"id", "raw_id", "name"}                      one line per user, id = line order
    items.jsonl          {"id", "raw_id", "title", "attributes"}       one line per item, id = line order
    sequences.txt        "user item item ..."   internal 0-based ids, items in time order
    candidates_val.txt   "user c1 ... c100"     direct task: validation target + 99 never-interacted items
    candidates_test.txt  "user c1 ... c100"     direct task: test target + 99 never-interacted items
    reviews.jsonl        {"user", "item", "rating", "feature", "explanation", "headline", "split"}  (optional)
    features/<enc>.npy   float32 [n_items, d], row i = item id i; features/<enc>.items.txt = raw ids in row order
    images/<raw_id>.png  item images (optional)

Ids on disk are the *stored* numbering; the item indexing a model sees (``random`` or
P5's ``sequential``) is applied when loading (see `bench.data.dataset`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench import tasks
from bench.errors import DataFormatError
from bench.io import _json_default, atomic_write_json

SCHEMA_VERSION = 1
N_CANDIDATES = 100
MIN_SEQUENCE = 3  # leave-one-out needs >= 1 training item, a validation item and a test item
# a dataset name is a directory right under the data root: no separators, no leading dot
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")


def check_name(name: str, root: Path | str | None = None) -> None:
    """Refuse (exit 2) a dataset name that is not a plain directory name inside the data root."""
    from bench.errors import UsageError

    ok = isinstance(name, str) and NAME_RE.fullmatch(name) is not None and ".." not in name
    if ok and root is not None:
        base = Path(root).resolve()
        ok = (base / name).resolve().parent == base
    if not ok:
        raise UsageError(
            f"invalid dataset name {name!r} (--name): it must be a plain directory name inside the data root "
            "(letters, digits, '.', '_', '+', '-'; not starting with '.'), e.g. --name clothing"
        )


@dataclass
class Item:
    raw_id: str
    title: str = ""
    attributes: list[str] = field(default_factory=list)


@dataclass
class User:
    raw_id: str
    name: str = ""


@dataclass
class Review:
    """One explanation record (P5's exp_splits entries)."""

    user: int
    item: int
    rating: float
    feature: str
    explanation: str
    headline: str = ""
    split: str = ""  # "train" | "val" | "test"; empty = split 8:1:1 when written


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_dataset(
    root: Path,
    name: str,
    *,
    users: list[User],
    items: list[Item],
    sequences: list[list[int]],
    reviews: list[Review] | None = None,
    features: dict[str, np.ndarray] | None = None,
    feature_meta: dict[str, dict] | None = None,
    images: dict[int, bytes] | None = None,
    provenance: dict | None = None,
    seed: int = 2022,
    format_version: dict | None = None,
) -> Path:
    """Validate and write a dataset; the directory appears atomically (built aside, then renamed).

    `sequences[u]` lists user u's items (0-based ids) in time order. Candidate lists for the
    direct task and the 8:1:1 explanation split (for reviews without one) are sampled here,
    once, from `seed`, and stored with the data so that every model sees the same ones. A
    catalogue too small for them has no candidate files and no direct task; the manifest's
    ``unsupported_tasks`` says why. `format_version` ({"by": writer, "version": n}) lets
    loading detect a dataset written by an older generator or importer.
    """
    from bench.data.splits import sample_candidates, split_reviews

    check_name(name, root)
    n_users, n_items = len(users), len(items)
    if len(sequences) != n_users:
        raise ValueError(f"{len(sequences)} sequences for {n_users} users")
    sequences = [[int(i) for i in seq] for seq in sequences]
    for u, seq in enumerate(sequences):
        if len(seq) < MIN_SEQUENCE:
            raise ValueError(f"user {users[u].raw_id!r} has {len(seq)} items; leave-one-out needs >= {MIN_SEQUENCE}")
        if min(seq) < 0 or max(seq) >= n_items:
            raise ValueError(f"user {users[u].raw_id!r} has an item id outside [0, {n_items})")
    reviews = split_reviews(list(reviews or []), seed) if reviews else []
    cands, why_not_direct = sample_candidates(sequences, n_items, seed)

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        _write_jsonl(tmp / "users.jsonl", [{"id": i, **asdict(u)} for i, u in enumerate(users)])
        _write_jsonl(tmp / "items.jsonl", [{"id": i, **asdict(it)} for i, it in enumerate(items)])
        with open(tmp / "sequences.txt", "w") as f:
            for u, seq in enumerate(sequences):
                f.write(f"{u} {' '.join(map(str, seq))}\n")
        for split, rows in (cands or {}).items():
            rows = np.column_stack([np.arange(n_users), rows]).astype(str)
            (tmp / f"candidates_{split}.txt").write_text("".join(" ".join(r) + "\n" for r in rows))
        if reviews:
            _write_jsonl(tmp / "reviews.jsonl", [asdict(r) for r in reviews])
        if images:
            (tmp / "images").mkdir()
            for i, png in images.items():
                (tmp / "images" / f"{items[i].raw_id}.png").write_bytes(png)
        manifest = _manifest(name, seed, provenance, format_version, n_users=n_users, n_items=n_items,
                             interactions=int(sum(len(s) for s in sequences)), reviews=len(reviews),
                             images=len(images or {}))
        if why_not_direct:
            manifest["unsupported_tasks"] = {tasks.DIRECT: why_not_direct}
            manifest["tasks"] = tasks_of(manifest)
        atomic_write_json(tmp / "manifest.json", manifest)
        for enc, arr in (features or {}).items():
            add_features(tmp, enc, arr, [it.raw_id for it in items], (feature_meta or {}).get(enc, {}))
        _refresh_checksums(tmp)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _manifest(name: str, seed: int, provenance: dict | None, format_version: dict | None, **counts: int) -> dict:
    manifest = {
        "schema": SCHEMA_VERSION,
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "provenance": provenance or {},
        "counts": {k.removeprefix("n_"): v for k, v in counts.items()},
        "features": {},
        "files": {},
        "format": format_version or {"by": "bench.data.store", "version": 1},
    }
    manifest["tasks"] = tasks_of(manifest)
    return manifest


def _swap_in(tmp: Path, final: Path) -> None:
    """Put the complete dataset `tmp` at `final`; an old one there is moved aside until then."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def task_support(manifest: dict) -> dict[str, str | None]:
    """Every task -> None when the dataset supports it, else one line saying why not (for a planner)."""
    return tasks.task_support(manifest)


def tasks_of(manifest: dict) -> list[str]:
    return [t for t, why in task_support(manifest).items() if why is None]


def add_features(ds_dir: Path, encoder: str, array: np.ndarray, raw_ids: list[str], meta: dict) -> None:
    """Store one visual feature set (rows in stored item order) and record it in the manifest."""
    from bench.io import atomic_write_npy, atomic_write_text

    ds_dir = Path(ds_dir)
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != len(raw_ids):
        raise ValueError(f"features {encoder!r}: expected [{len(raw_ids)}, d], got {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"features {encoder!r}: contains NaN or inf")
    atomic_write_npy(ds_dir / "features" / f"{encoder}.npy", array)
    atomic_write_text(ds_dir / "features" / f"{encoder}.items.txt", "\n".join(raw_ids) + "\n")
    manifest = json.loads((ds_dir / "manifest.json").read_text())
    manifest["features"][encoder] = {"dim": int(array.shape[1]), **meta}
    atomic_write_json(ds_dir / "manifest.json", manifest)
    _refresh_checksums(ds_dir)


def _refresh_checksums(ds_dir: Path) -> None:
    manifest_path = ds_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    files = {}
    for p in sorted(ds_dir.rglob("*")):
        # images/ are many small files (hashing them all is slow); cache/ holds derived files (tokenizers)
        if p.is_file() and p.name != "manifest.json" and not {"images", "cache"} & set(p.relative_to(ds_dir).parts):
            files[str(p.relative_to(ds_dir))] = _sha256(p)
    manifest["files"] = files
    atomic_write_json(manifest_path, manifest)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n")


# ----------------------------------------------------------------------------------------- reading


def read_manifest(ds_dir: Path) -> dict:
    path = Path(ds_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "missing: not a dataset directory") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path, f"invalid JSON: {e.msg}", e.lineno) from None
    for key in ("schema", "name", "counts", "files", "seed"):
        if key not in manifest:
            raise DataFormatError(path, f"missing key {key!r}")
    if manifest["schema"] != SCHEMA_VERSION:
        raise DataFormatError(path, f"schema {manifest['schema']} is not supported (expected {SCHEMA_VERSION})")
    return manifest


def verify_checksums(ds_dir: Path, manifest: dict) -> None:
    for rel, digest in manifest["files"].items():
        p = Path(ds_dir) / rel
        if not p.exists():
            raise DataFormatError(p, "listed in manifest.json but missing")
        if _sha256(p) != digest:
            raise DataFormatError(p, "checksum differs from manifest.json (edited after import? import it again)")


def read_jsonl(path: Path, required: dict[str, type | tuple]) -> list[dict]:
    """Read a JSON-lines file, checking each row has `required` keys of the given types."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, f"invalid JSON ({e.msg})", lineno) from None
            if not isinstance(row, dict):
                raise DataFormatError(path, "expected a JSON object", lineno)
            for key, typ in required.items():
                if key not in row:
                    raise DataFormatError(path, f"missing field {key!r}", lineno)
                if not isinstance(row[key], typ) or isinstance(row[key], bool) and typ is not bool:
                    raise DataFormatError(path, f"field {key!r} has type {type(row[key]).__name__}", lineno)
            rows.append(row)
    return rows


def read_int_rows(path: Path, *, n_ids: int, width: int | None = None, min_width: int = 1) -> list[np.ndarray]:
    """Read lines of whitespace-separated non-negative ints `< n_ids` (after the leading key)."""
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            bad = next((x for x in parts if not (x.isascii() and x.isdigit())), None)
            if bad is not None:
                raise DataFormatError(path, f"not a non-negative integer id: {bad!r}", lineno)
            vals = np.array([int(x) for x in parts], dtype=np.int64)
            if vals[0] != len(rows):
                raise DataFormatError(path, f"expected user {len(rows)} first, got {vals[0]}", lineno)
            body = vals[1:]
            if width is not None and len(body) != width:
                raise DataFormatError(path, f"expected {width} ids after the user, got {len(body)}", lineno)
            if len(body) < min_width:
                raise DataFormatError(
                    path, f"expected at least {min_width} ids after the user, got {len(body)}", lineno
                )
            if body.min() < 0 or body.max() >= n_ids:
                raise DataFormatError(path, f"item id out of range [0, {n_ids})", lineno)
            rows.append(body)
    return rows
