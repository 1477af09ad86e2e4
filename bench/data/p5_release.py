"""Importer of the P5/VIP5 release layout into the canonical dataset format (see `bench.data.store`).

A release dataset is a directory ``data/<ds>/`` holding ``sequential_data.txt`` and optionally
``datamaps.json``, ``item2attributes.json``, ``item_title_prefixes.txt``, ``meta.json.gz``,
``user_id2name.pkl``, ``exp_splits.pkl``, ``review_splits.pkl`` and ``negative_samples.txt``
(any subset works; see REFERENCE.md "P5/VIP5 data release").

The import runs in steps: survey the directory, read datamaps.json (the raw ids, which also
validate the sequences), read the sequences, build the item catalogue and the kept users, let
the optional files annotate them (`bench.data.p5_annotations`), then write the dataset with the
provenance gathered on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.data.import_common import IMPORTER_VERSION, check_user_line, read_json, text_lines
from bench.data.p5_annotations import (
    assign_titles,
    read_exp_reviews,
    read_item_attributes,
    read_meta_titles,
    read_title_prefixes,
    read_user_names,
)
from bench.data.store import MIN_SEQUENCE, Item, Review, User, check_name, write_dataset
from bench.errors import BenchError, DataFormatError

__all__ = ["import_p5_release", "SEQUENTIAL", "P5_FILES"]

SEQUENTIAL = "sequential_data.txt"
DATAMAPS = "datamaps.json"
ITEM2ATTRIBUTES = "item2attributes.json"
TITLE_PREFIXES = "item_title_prefixes.txt"
META = "meta.json.gz"
USER_NAMES = "user_id2name.pkl"
EXP_SPLITS = "exp_splits.pkl"
REVIEW_SPLITS = "review_splits.pkl"
NEGATIVES = "negative_samples.txt"
P5_FILES = (
    SEQUENTIAL, DATAMAPS, ITEM2ATTRIBUTES, TITLE_PREFIXES, META, USER_NAMES, EXP_SPLITS, REVIEW_SPLITS,
    NEGATIVES,
)
UNUSED = {
    NEGATIVES: "unused: VIP5 never reads it; direct-task candidates are sampled once (seeded) and stored",
    REVIEW_SPLITS: (
        "unused: exp_splits.pkl holds the same reviews plus the feature/explanation the task needs"
    ),
}


@dataclass
class _Release:
    """A release directory being imported, and the provenance gathered along the way."""

    path: Path
    found: list[str]  # the release files present, in P5_FILES order
    others: list[str]  # other entries of the directory (not imported)
    used: list[str]
    notes: dict[str, str]  # release file -> why it was not used
    prov: dict


@dataclass
class _Datamaps:
    """datamaps.json as the import uses it: all empty when the release has none."""

    dm: dict = field(default_factory=dict)
    id2item: dict[int, str] | None = None
    id2user: dict[int, str] | None = None
    id2attribute: dict[str, str] | None = None


@dataclass
class _Catalogue:
    """The items and the kept users with their sequences, and P5 id -> stored index for each."""

    items: list[Item]
    item_index: dict[int, int]
    users: list[User]
    user_index: dict[int, int]
    sequences: list[list[int]]


def import_p5_release(path: Path, root: Path, name: str, *, seed: int = 2022) -> Path:
    """Import a P5/VIP5 release dataset directory (``data/<ds>/``); any subset of its files."""
    path = Path(path)
    check_name(name)
    rel = _survey(path)
    maps = _read_datamaps(rel)  # first: it names the items and validates sequential_data.txt
    seqs = _read_sequences(path / SEQUENTIAL, maps)
    cat = _catalogue(rel, maps, seqs)
    _add_attributes(rel, maps, cat)
    _add_titles(rel, cat.items)
    _add_user_names(rel, cat)
    reviews = _add_reviews(rel, maps, cat)
    return _write(rel, root, name, cat, reviews, seed)


def _survey(path: Path) -> _Release:
    """Which release files the directory holds; refuses a directory without sequential_data.txt."""
    if not (path / SEQUENTIAL).is_file():
        raise BenchError(f"{path}: not a P5/VIP5 release directory (expected {SEQUENTIAL} in it)")
    found = [f for f in P5_FILES if (path / f).is_file()]
    others = sorted(p.name for p in path.iterdir() if p.name not in P5_FILES and not p.name.startswith("."))
    return _Release(
        path=path, found=found, others=others, used=[SEQUENTIAL],
        notes={f: UNUSED[f] for f in found if f in UNUSED},
        prov={"importer": "p5_release", "source": str(path.resolve())},
    )


# ----------------------------------------------------------------------------------------- datamaps


def _read_datamaps(rel: _Release) -> _Datamaps:
    """The P5 id -> raw id maps of datamaps.json (and its attribute names), checked."""
    if DATAMAPS not in rel.found:
        return _Datamaps()
    dm_path = rel.path / DATAMAPS
    dm = read_json(dm_path)
    if not isinstance(dm, dict):
        raise DataFormatError(dm_path, "expected a JSON object with user2id/item2id/id2user/id2item")
    id2item = _id_map(dm, "id2item", "item2id", dm_path)
    id2user = _id_map(dm, "id2user", "user2id", dm_path)
    id2attribute: dict[str, str] | None = None
    if isinstance(dm.get("id2attribute"), dict):
        id2attribute = {str(k): str(v) for k, v in dm["id2attribute"].items()}
    elif isinstance(dm.get("attribute2id"), dict):
        id2attribute = {str(v): str(k) for k, v in dm["attribute2id"].items()}
    rel.used.append(DATAMAPS)
    return _Datamaps(dm=dm, id2item=id2item, id2user=id2user, id2attribute=id2attribute)


def _id_map(dm: dict, fwd: str, inv: str, path: Path) -> dict[int, str] | None:
    """P5 id -> raw id from datamaps' `fwd` (id2x) or, failing that, by inverting `inv` (x2id)."""
    if fwd in dm:
        src = dm[fwd]
        if not isinstance(src, dict):
            raise DataFormatError(path, f"{fwd!r} must be an object (P5 id -> raw id)")
        pairs = src.items()
    elif inv in dm:
        src = dm[inv]
        if not isinstance(src, dict):
            raise DataFormatError(path, f"{inv!r} must be an object (raw id -> P5 id)")
        pairs = ((v, k) for k, v in src.items())
    else:
        return None
    out: dict[int, str] = {}
    for k, v in pairs:
        ks = str(k)
        if isinstance(k, bool) or not ks.isdigit():
            raise DataFormatError(path, f"{fwd!r}: P5 id {k!r} is not a non-negative integer")
        if not isinstance(v, str):
            raise DataFormatError(path, f"{fwd!r}: raw id for {k!r} must be a string, got {type(v).__name__}")
        out[int(ks)] = v
    return out


def _raw_to_p5(dm: dict, key: str, id2raw: dict[int, str] | None, path: Path) -> dict[str, int]:
    """raw id -> P5 id from datamaps' `key` (x2id), else by inverting id2x."""
    src = dm.get(key)
    if isinstance(src, dict):
        out = {}
        for k, v in src.items():
            vs = str(v)
            if isinstance(v, bool) or not vs.isdigit():
                raise DataFormatError(path, f"{key!r}: P5 id {v!r} for {k!r} is not a non-negative integer")
            out[str(k)] = int(vs)
        return out
    if src is not None:
        raise DataFormatError(path, f"{key!r} must be an object (raw id -> P5 id)")
    return {raw: i for i, raw in (id2raw or {}).items()}


# ----------------------------------------------------------------------------------------- sequences


def _p5_id(token: str, path: Path, lineno: int, what: str) -> int:
    """A P5 id token as an int; a raw id such as an ASIN is refused with the import that fits it."""
    if not (token.isascii() and token.isdigit()):  # P5 ids are non-negative decimal integers
        raise DataFormatError(path, f"{what} id {token!r} is not a non-negative integer (P5 ids are decimal "
                              "numbers; a file of raw ids such as ASINs imports as a plain sequence file: "
                              "python -m bench data import FILE --name NAME)", lineno)
    return int(token)


def _read_sequences(seq_path: Path, maps: _Datamaps) -> dict[int, list[int]]:
    """P5 user id -> P5 item ids, one ``user item item ...`` line each, checked against datamaps."""
    seqs: dict[int, list[int]] = {}
    line_of: dict[int, int] = {}
    for lineno, line in text_lines(seq_path):
        parts = line.split()
        if not parts:
            continue
        uid = _p5_id(parts[0], seq_path, lineno, "user")
        check_user_line(seq_path, lineno, uid, str(uid), len(parts) - 1, line_of)
        if maps.id2user is not None and uid not in maps.id2user:
            raise DataFormatError(seq_path, f"user {uid} is not in {DATAMAPS} (id2user); use the "
                                  "datamaps.json of the same release, or remove it to import without raw ids",
                                  lineno)
        line_of[uid] = lineno
        seqs[uid] = _line_items(parts[1:], line, seq_path, lineno, maps.id2item)
    if not seqs:
        raise DataFormatError(seq_path, "no user lines (expected 'user item item ...', one user a line)")
    return seqs


def _line_items(
    toks: list[str], line: str, seq_path: Path, lineno: int, id2item: dict[int, str] | None
) -> list[int]:
    """The P5 item ids of one line's tokens, each checked to be in datamaps when it has id2item."""
    if line.isascii() and all(map(str.isdigit, toks)):  # fast path; ASCII isdigit = 0-9
        items = list(map(int, toks))
    else:
        items = [_p5_id(t, seq_path, lineno, "item") for t in toks]
    if id2item is not None and not id2item.keys() >= set(items):
        bad = next(i for i in items if i not in id2item)
        raise DataFormatError(seq_path, f"item {bad} is not in {DATAMAPS} (id2item); use the datamaps.json "
                              "of the same release, or remove it to import without raw ids", lineno)
    return items


def _catalogue(rel: _Release, maps: _Datamaps, seqs: dict[int, list[int]]) -> _Catalogue:
    items, item_index = _items(maps, seqs)
    users, user_index, sequences = _users(rel, maps, seqs, item_index)
    return _Catalogue(items, item_index, users, user_index, sequences)


def _items(maps: _Datamaps, seqs: dict[int, list[int]]) -> tuple[list[Item], dict[int, int]]:
    """Every item of sequential_data.txt and datamaps, in P5 id order, and P5 id -> stored id."""
    id2item = maps.id2item
    p5_items = sorted(set().union(*seqs.values()) | set(id2item or ()))
    item_index = {p5: k for k, p5 in enumerate(p5_items)}
    items = [Item(raw_id=id2item[p5] if id2item is not None else str(p5)) for p5 in p5_items]
    return items, item_index


def _users(
    rel: _Release, maps: _Datamaps, seqs: dict[int, list[int]], item_index: dict[int, int]
) -> tuple[list[User], dict[int, int], list[list[int]]]:
    """The users with >= MIN_SEQUENCE items, in P5 id order, P5 id -> stored id, and their
    sequences in stored item ids; the dropped users and items go to the provenance."""
    id2user = maps.id2user
    kept_uids = sorted(u for u, s in seqs.items() if len(s) >= MIN_SEQUENCE)
    short = [u for u in seqs if len(seqs[u]) < MIN_SEQUENCE]
    if not kept_uids:
        raise DataFormatError(rel.path / SEQUENTIAL, f"no user has the {MIN_SEQUENCE} items leave-one-out "
                              "needs (training, validation and test item); give users with at least 3 items")
    user_index = {u: k for k, u in enumerate(kept_uids)}
    users = [User(raw_id=id2user[u] if id2user is not None else str(u)) for u in kept_uids]
    sequences = [[item_index[i] for i in seqs[u]] for u in kept_uids]
    kept_items = {i for u in kept_uids for i in seqs[u]}
    prov = rel.prov
    prov["users_dropped_fewer_than_3_items"] = len(short)
    prov["interactions_dropped"] = sum(len(seqs[u]) for u in short)
    prov["items_without_interactions"] = len(item_index) - len(kept_items)
    if id2user is not None:
        prov["datamaps_users_without_sequence"] = len(set(id2user) - set(seqs))
    prov["item_numbering"] = "stored item id = rank of the P5 item id (= P5 id - 1 when P5 ids are 1..n)"
    return users, user_index, sequences


# ----------------------------------------------------------------------------------------- optional files


def _add_attributes(rel: _Release, maps: _Datamaps, cat: _Catalogue) -> None:
    """The items' attributes from item2attributes.json, named through datamaps where it can."""
    if ITEM2ATTRIBUTES in rel.found:
        stats = read_item_attributes(rel.path / ITEM2ATTRIBUTES, maps.dm, maps.id2attribute, cat.items,
                                     cat.item_index)
        rel.used.append(ITEM2ATTRIBUTES)
        rel.prov["attributes"] = stats


def _add_titles(rel: _Release, items: list[Item]) -> None:
    """meta.json.gz's title, else the title prefix, else none."""
    raw_ids = {it.raw_id for it in items}
    titles_meta: dict[str, str] = {}
    if META in rel.found:
        titles_meta = read_meta_titles(rel.path / META, raw_ids)
        rel.used.append(META)
    prefixes: dict[str, str] = {}
    prefix_unknown = 0
    if TITLE_PREFIXES in rel.found:
        prefixes, prefix_unknown = read_title_prefixes(rel.path / TITLE_PREFIXES, raw_ids)
        rel.used.append(TITLE_PREFIXES)
    rel.prov["titles"] = assign_titles(items, titles_meta, prefixes)
    if TITLE_PREFIXES in rel.found:
        rel.prov["titles"]["prefix_lines_for_unknown_items"] = prefix_unknown


def _add_user_names(rel: _Release, cat: _Catalogue) -> None:
    """The kept users' names from user_id2name.pkl."""
    if USER_NAMES in rel.found:
        n_named = read_user_names(rel.path / USER_NAMES, cat.users, cat.user_index)
        rel.used.append(USER_NAMES)
        rel.prov["users_named"] = n_named


def _add_reviews(rel: _Release, maps: _Datamaps, cat: _Catalogue) -> list[Review]:
    """The review records of exp_splits.pkl, whose reviewerID/asin datamaps maps to P5 ids."""
    if EXP_SPLITS not in rel.found:
        return []
    if not maps.dm:
        rel.notes[EXP_SPLITS] = f"unused: mapping reviewerID/asin to P5 ids needs {DATAMAPS}, which is absent"
        return []
    user2p5 = _raw_to_p5(maps.dm, "user2id", maps.id2user, rel.path / DATAMAPS)
    item2p5 = _raw_to_p5(maps.dm, "item2id", maps.id2item, rel.path / DATAMAPS)
    reviews, stats = read_exp_reviews(rel.path / EXP_SPLITS, user2p5, item2p5, cat.user_index, cat.item_index)
    rel.used.append(EXP_SPLITS)
    rel.prov["reviews"] = stats
    return reviews


# ----------------------------------------------------------------------------------------- writing


def _write(rel: _Release, root: Path, name: str, cat: _Catalogue, reviews: list[Review], seed: int) -> Path:
    """Write the dataset, its provenance closed by which release files were found and used."""
    prov = rel.prov
    prov["files_found"] = rel.found
    prov["files_used"] = rel.used
    if rel.notes:
        prov["files_not_used"] = rel.notes
    if rel.others:
        prov["other_entries_ignored"] = rel.others  # e.g. a features/ directory: use `bench features`
    return write_dataset(
        root, name, users=cat.users, items=cat.items, sequences=cat.sequences, reviews=reviews or None,
        provenance=prov, seed=seed,
        format_version={"by": "bench.data.importers:p5_release", "version": IMPORTER_VERSION},
    )
