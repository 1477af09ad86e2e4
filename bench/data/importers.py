"""Importers into the canonical dataset format (see `bench.data.store`).

Two input layouts:

* the P5/VIP5 release layout, a directory ``data/<ds>/`` holding ``sequential_data.txt`` and
  optionally ``datamaps.json``, ``item2attributes.json``, ``item_title_prefixes.txt``,
  ``meta.json.gz``, ``user_id2name.pkl``, ``exp_splits.pkl``, ``review_splits.pkl`` and
  ``negative_samples.txt`` (any subset works; see REFERENCE.md "P5/VIP5 data release"),
  imported by `bench.data.p5_release`;
* a plain sequence file: ``user item item ...`` one user a line, raw ids, time order (here).

`import_path` tells them apart. Pickles are read with `restricted_load` (`bench.data.import_common`),
which admits plain containers and scalars only.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.import_common import (
    IMPORTER_VERSION,
    RestrictedUnpickler,
    check_user_line,
    restricted_load,
    text_lines,
)
from bench.data.p5_release import SEQUENTIAL, import_p5_release
from bench.data.store import MIN_SEQUENCE, Item, User, check_name, write_dataset
from bench.errors import BenchError, DataFormatError

__all__ = [
    "IMPORTER_VERSION", "import_path", "import_p5_release", "import_sequence_file", "restricted_load",
    "RestrictedUnpickler",
]


# ----------------------------------------------------------------------------------------- entry


def import_path(path: Path, root: Path, name: str, *, seed: int = 2022) -> Path:
    """Import PATH (a P5/VIP5 release directory or a plain sequence file) as dataset `name` under `root`."""
    path = Path(path)
    check_name(name)
    if path.is_dir():
        if (path / SEQUENTIAL).is_file():
            return import_p5_release(path, root, name, seed=seed)
        inner = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / SEQUENTIAL).is_file())
        hint = ""
        if inner:
            hint = f"; it has P5 dataset directories inside: {', '.join(inner)} (import one of them)"
        raise BenchError(
            f"{path}: not a P5/VIP5 release directory (expected a directory containing {SEQUENTIAL}, "
            f"or a plain sequence file 'user item item ...'){hint}"
        )
    if path.is_file():
        return import_sequence_file(path, root, name, seed=seed)
    raise BenchError(
        f"{path}: no such file or directory (expected a P5/VIP5 release directory containing {SEQUENTIAL}, "
        "or a plain sequence file 'user item item ...')"
    )


# ----------------------------------------------------------------------------------------- plain file


def import_sequence_file(path: Path, root: Path, name: str, *, seed: int = 2022) -> Path:
    """Import a plain sequence file: ``user item item ...`` one user a line, raw ids, time order.

    ``#`` lines and blank lines are skipped. Items are numbered by first appearance in the file;
    users with fewer than 3 items are dropped (leave-one-out needs 3).
    """
    path = Path(path)
    check_name(name)
    item_index: dict[str, int] = {}
    line_of: dict[str, int] = {}
    rows: list[tuple[str, list[int]]] = []
    for lineno, line in text_lines(path):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        user = parts[0]
        check_user_line(path, lineno, user, repr(user), len(parts) - 1, line_of)
        line_of[user] = lineno
        seq = []
        for tok in parts[1:]:
            k = item_index.get(tok)
            if k is None:
                k = item_index[tok] = len(item_index)
            seq.append(k)
        rows.append((user, seq))
    if not rows:
        raise DataFormatError(path, "no user lines (expected 'user item item ...', one user a line)")
    kept = [(u, s) for u, s in rows if len(s) >= MIN_SEQUENCE]
    if not kept:
        raise DataFormatError(path, f"no user has the {MIN_SEQUENCE} items leave-one-out needs (training, "
                              "validation and test item); give users with at least 3 items")
    dropped = len(rows) - len(kept)
    prov = {
        "importer": "sequence_file",
        "source": str(path.resolve()),
        "files_used": [path.name],
        "users_dropped_fewer_than_3_items": dropped,
        "interactions_dropped": sum(len(s) for u, s in rows if len(s) < MIN_SEQUENCE),
        "items_without_interactions": len(item_index) - len({i for _, s in kept for i in s}),
        "item_numbering": "stored item id = order of first appearance in the file",
    }
    users = [User(raw_id=u) for u, _ in kept]
    items = [Item(raw_id=tok) for tok in item_index]  # dicts keep insertion order = first appearance
    return write_dataset(
        root, name, users=users, items=items, sequences=[s for _, s in kept], provenance=prov, seed=seed,
        format_version={"by": "bench.data.importers:sequence_file", "version": IMPORTER_VERSION},
    )

