"""The loaded, validated view of a dataset that every model receives (`BenchData`).

Loading applies the item indexing (``random`` or ``sequential``) so that a model only ever
sees one consistent numbering; splits are derived here, in one place, for every model.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from bench.data.splits import INDEXINGS, item_permutation
from bench.data.store import (
    MIN_SEQUENCE,
    N_CANDIDATES,
    DataFormatError,
    Item,
    Review,
    User,
    read_int_rows,
    read_jsonl,
    read_manifest,
    task_support,
    tasks_of,
    verify_checksums,
)
from bench.errors import BenchError, MissingDataError, UnknownNameError
from bench.tasks import DIRECT, TASKS

SPLITS = ("val", "test")
SYNTHETIC = "synthetic"
# generated on first use from the generator preset of its name (bench.data.synthetic.PRESETS);
# the other presets (`sparse`) are made with: python -m bench data generate --preset NAME
EMBEDDED = (SYNTHETIC,)


@dataclass(frozen=True)
class RankQuery:
    """One ranking request. `history` = the user's items before the target, oldest first.
    `candidates` is set for the direct task (the model ranks only those); None = all items.
    `exclude`: items that cannot be the target and that every ranker leaves out of its list (the
    history, on a dataset where no user repeats an item: `BenchData.history_excluded`)."""

    user: int
    history: np.ndarray
    candidates: np.ndarray | None = None
    exclude: np.ndarray | None = None


@dataclass(frozen=True)
class ExplainQuery:
    """One explanation request; `feature` is the hint word (used by PETER+ and prompt C-12 style models)."""

    user: int
    item: int
    feature: str


def data_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("BENCH_DATA") or "data")


def known_datasets(root: str | Path | None = None) -> list[str]:
    root = data_root(root)
    names = set(EMBEDDED)
    if root.is_dir():
        names |= {p.name for p in root.iterdir() if (p / "manifest.json").is_file() and not p.name.startswith(".")}
    return sorted(names)


def check_dataset_name(name: str, root: str | Path | None = None) -> None:
    """Fail before loading anything when `name` is neither imported nor the embedded dataset."""
    known = known_datasets(root)
    if name not in known:
        raise UnknownNameError(
            "dataset",
            name,
            known,
            hint=f"(import it with: python -m bench data import PATH --name {name}; data root: {data_root(root)})",
        )


def load_dataset(name: str, root: str | Path | None = None, indexing: str = "random", verify: bool = True) -> BenchData:
    """Load (generating an embedded dataset on first use, or again when an older generator made it) and
    validate a dataset; an imported dataset of an older format is refused with the re-import command."""
    root = data_root(root)
    if indexing not in INDEXINGS:
        raise UnknownNameError("indexing", indexing, INDEXINGS)
    ds_dir = root / name
    if name in EMBEDDED and not (ds_dir / "manifest.json").exists():
        from bench.data.synthetic import generate

        generate(root, name=name, preset=name)
    check_dataset_name(name, root)
    ensure_current(name, root)
    return BenchData.load(ds_dir, indexing=indexing, verify=verify)


def current_format(manifest: dict) -> tuple[str, int]:
    """(writer, version) that this code would stamp on a dataset made like `manifest`'s."""
    from bench.data.importers import IMPORTER_VERSION
    from bench.data.synthetic import GENERATOR_VERSION

    prov = manifest.get("provenance") or {}
    if prov.get("generator") == "bench.data.synthetic":
        return "bench.data.synthetic", GENERATOR_VERSION
    return f"bench.data.importers:{prov.get('importer', 'unknown')}", IMPORTER_VERSION


def format_version(manifest: dict) -> int:
    """The generator/importer format version a manifest records; 1 for manifests from before versions."""
    return int((manifest.get("format") or {}).get("version", 1))


def ensure_current(name: str, root: str | Path | None = None) -> None:
    """Regenerate a synthetic dataset written by an older generator (same preset, sizes and seed);
    refuse an imported one of another format version with the one-line command that re-imports it."""
    root = data_root(root)
    ds_dir = root / name
    manifest = read_manifest(ds_dir)
    writer, current = current_format(manifest)
    have = format_version(manifest)
    if have == current:
        return
    prov = manifest.get("provenance") or {}
    if writer == "bench.data.synthetic" and have < current:
        from bench.data.synthetic import generate

        kw = {k: prov[k] for k in ("n_users", "n_items", "image_size", "preset") if k in prov}
        print(f"dataset {name!r} was made by generator version {have} (current {current}): regenerating it",
              file=sys.stderr, flush=True)
        generate(root, name=name, seed=manifest["seed"], **kw)
        return
    source = prov.get("source", "SOURCE")
    raise BenchError(
        f"dataset {name!r} ({ds_dir}) was written by {writer} format version {have}; this code reads version "
        f"{current}. Re-import it: python -m bench data import {source} --name {name} --seed {manifest['seed']} "
        f"--data-root {root} --force"
    )


def dataset_task_support(name: str, root: str | Path | None = None) -> dict[str, str | None]:
    """Task -> None (supported) or the reason it is not, from the manifest alone (nothing is loaded);
    an embedded dataset not generated yet supports every task."""
    ds_dir = data_root(root) / name
    if name in EMBEDDED and not (ds_dir / "manifest.json").exists():
        return {t: None for t in TASKS}
    return task_support(read_manifest(ds_dir))


@dataclass
class BenchData:
    name: str
    path: Path
    manifest: dict
    indexing: str
    users: list[User]
    items: list[Item]
    sequences: list[np.ndarray]  # per user, model-facing item ids, time order
    candidates: dict[str, np.ndarray]  # split -> [n_users, 100]
    reviews: list[Review] = field(default_factory=list)
    perm: np.ndarray | None = None  # stored item id -> model-facing id

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, ds_dir: Path, indexing: str = "random", verify: bool = True) -> BenchData:
        ds_dir = Path(ds_dir)
        manifest = read_manifest(ds_dir)
        if verify:
            verify_checksums(ds_dir, manifest)
        users = [
            User(raw_id=r["raw_id"], name=r.get("name", ""))
            for r in _check_ids(ds_dir / "users.jsonl", read_jsonl(ds_dir / "users.jsonl", {"id": int, "raw_id": str}))
        ]
        item_rows = _check_ids(ds_dir / "items.jsonl", read_jsonl(ds_dir / "items.jsonl", {"id": int, "raw_id": str}))
        items = [
            Item(raw_id=r["raw_id"], title=r.get("title", ""), attributes=list(r.get("attributes", [])))
            for r in item_rows
        ]
        n_users, n_items = len(users), len(items)
        seqs = read_int_rows(ds_dir / "sequences.txt", n_ids=n_items, min_width=MIN_SEQUENCE)
        if len(seqs) != n_users:
            raise DataFormatError(ds_dir / "sequences.txt", f"{len(seqs)} lines for {n_users} users")
        cands = {}
        for split in SPLITS if DIRECT in tasks_of(manifest) else ():
            path = ds_dir / f"candidates_{split}.txt"
            rows = read_int_rows(path, n_ids=n_items, width=N_CANDIDATES)
            if len(rows) != n_users:
                raise DataFormatError(path, f"{len(rows)} lines for {n_users} users")
            cands[split] = np.stack(rows) if rows else np.zeros((0, N_CANDIDATES), np.int64)
            target = np.array([s[-2] if split == "val" else s[-1] for s in seqs], dtype=np.int64)
            bad = np.flatnonzero(~(cands[split] == target[:, None]).any(1))
            if len(bad):
                raise DataFormatError(path, "candidate list does not contain the user's target item", int(bad[0]) + 1)
        reviews = []
        if (ds_dir / "reviews.jsonl").exists():
            path = ds_dir / "reviews.jsonl"
            num = (int, float)
            spec = {"user": int, "item": int, "rating": num, "feature": str,
                    "explanation": str, "split": str}  # not a task: review fields
            for lineno, r in enumerate(read_jsonl(path, spec), 1):
                if not (0 <= r["user"] < n_users and 0 <= r["item"] < n_items):
                    raise DataFormatError(path, "user or item id out of range", lineno)
                if r["split"] not in ("train", "val", "test"):
                    raise DataFormatError(path, f"split must be train/val/test, got {r['split']!r}", lineno)
                reviews.append(Review(**{k: r.get(k, "") for k in Review.__dataclass_fields__}))

        perm = item_permutation(indexing, seqs, n_items, manifest["seed"])
        inv = np.argsort(perm)  # model-facing id -> stored id
        items = [items[i] for i in inv]
        seqs = [perm[s] for s in seqs]
        cands = {k: perm[v] for k, v in cands.items()}
        for r in reviews:
            r.item = int(perm[r.item])
        return cls(manifest["name"], ds_dir, manifest, indexing, users, items, seqs, cands, reviews, perm)

    # ------------------------------------------------------------------ facts

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def tasks(self) -> list[str]:
        return tasks_of(self.manifest)

    @property
    def task_support(self) -> dict[str, str | None]:
        """Task -> None when supported, else one line why not (e.g. a catalogue under 100 items has no direct task)."""
        return task_support(self.manifest)

    def require(self, what: str, model: str) -> None:
        """Fail before training when the dataset lacks what a model needs."""
        have = {
            "attributes": any(it.attributes for it in self.items),
            "features": bool(self.manifest.get("features")),
            "reviews": bool(self.reviews),
            "images": (self.path / "images").is_dir(),
        }
        if not have[what]:
            raise MissingDataError(f"model {model!r} needs item {what} but dataset {self.name!r} has none")

    # ------------------------------------------------------------------ splits (leave-one-out, as P5)

    def train_sequences(self) -> list[np.ndarray]:
        """Each user's items except the validation and test targets."""
        return [s[:-2] for s in self.sequences]

    def train_matrix(self):
        """Users x items binary CSR matrix of the training interactions (validation and test targets excluded)."""
        import scipy.sparse as sp

        seqs = self.train_sequences()
        rows = np.concatenate([np.full(len(s), u) for u, s in enumerate(seqs)])
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.concatenate(seqs))),
                          shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @cached_property
    def history_excluded(self) -> bool:
        """Whether rankings against all items leave out the user's history: when no user's training
        sequence repeats an item (P5's Amazon releases and `synthetic`), a history item is never the
        next one, yet models, generative or not, give top-10 places to the items they were just shown
        (README, Protocol). Decided from the training part only."""
        return all(len(np.unique(s)) == len(s) for s in self.train_sequences())

    def rank_queries(self, task: str, split: str) -> list[RankQuery]:
        """val: history seq[:-2] -> target seq[-2]; test: history seq[:-1] -> target seq[-1]."""
        cut = -2 if split == "val" else -1
        if task in TASKS and self.task_support[task]:
            raise MissingDataError(f"dataset {self.name!r} has no {task} task: {self.task_support[task]}")
        cands = self.candidates[split] if TASKS[task].candidates else None
        if cands is not None:
            return [RankQuery(u, s[:cut], cands[u]) for u, s in enumerate(self.sequences)]
        exclude = self.history_excluded
        return [RankQuery(u, s[:cut], exclude=s[:cut] if exclude else None) for u, s in enumerate(self.sequences)]

    def rank_targets(self, split: str) -> np.ndarray:
        cut = -2 if split == "val" else -1
        return np.array([s[cut] for s in self.sequences], dtype=np.int64)

    def review_split(self, split: str) -> list[Review]:
        return [r for r in self.reviews if r.split == split]

    def explain_queries(self, split: str) -> list[ExplainQuery]:
        return [ExplainQuery(r.user, r.item, r.feature) for r in self.review_split(split)]

    # ------------------------------------------------------------------ visual features and images

    @property
    def feature_sets(self) -> list[str]:
        return sorted(self.manifest.get("features", {}))

    def features(self, encoder: str | None = None) -> np.ndarray:
        """[n_items, d] float32 item visual features, rows in model-facing item order."""
        return self._features(self.feature_set_name(encoder))

    def feature_set_name(self, encoder: str | None = None) -> str:
        """The feature set `features(encoder)` reads: `encoder`, else the manifest's default, else the first."""
        known = self.feature_sets
        if not known:
            raise MissingDataError(f"dataset {self.name!r} has no item visual features (see: python -m bench features)")
        encoder = encoder or self.manifest.get("default_features") or known[0]
        if encoder not in known:
            raise UnknownNameError("feature set", encoder, known)
        return encoder

    def _features(self, encoder: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_feature_cache", {})
        if encoder not in cache:
            path = self.path / "features" / f"{encoder}.npy"
            arr = np.load(path, allow_pickle=False)
            if arr.shape[0] != self.n_items:
                raise DataFormatError(path, f"{arr.shape[0]} rows for {self.n_items} items")
            cache[encoder] = arr[np.argsort(self.perm)].astype(np.float32)
        return cache[encoder]

    def image_path(self, item: int) -> Path:
        return self.path / "images" / f"{self.items[item].raw_id}.png"

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """Training-interaction count per item (validation and test targets excluded)."""
        counts = np.zeros(self.n_items, dtype=np.int64)
        for s in self.train_sequences():
            np.add.at(counts, s, 1)
        return counts


def _check_ids(path: Path, rows: list[dict]) -> list[dict]:
    for lineno, r in enumerate(rows, 1):
        if r["id"] != lineno - 1:
            raise DataFormatError(path, f"expected id {lineno - 1}, got {r['id']} (ids are line order)", lineno)
    return rows
