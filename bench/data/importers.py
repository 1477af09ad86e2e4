"""Importers into the canonical dataset format (see `bench.data.store`).

Two input layouts:

* the P5/VIP5 release layout, a directory ``data/<ds>/`` holding ``sequential_data.txt`` and
  optionally ``datamaps.json``, ``item2attributes.json``, ``item_title_prefixes.txt``,
  ``meta.json.gz``, ``user_id2name.pkl``, ``exp_splits.pkl``, ``review_splits.pkl`` and
  ``negative_samples.txt`` (any subset works; see REFERENCE.md "P5/VIP5 data release");
* a plain sequence file: ``user item item ...`` one user a line, raw ids, time order.

Pickles are read with `restricted_load`, which admits plain containers and scalars only:
a pickle naming any other class (``os.system``, numpy objects, ...) is refused before
anything is called.
"""

from __future__ import annotations

import ast
import gzip
import json
import pickle
import re
from pathlib import Path

from bench.data.store import MIN_SEQUENCE, Item, Review, User, check_name, write_dataset
from bench.errors import BenchError, DataFormatError

__all__ = ["import_path", "import_p5_release", "import_sequence_file", "restricted_load", "RestrictedUnpickler"]

SEQUENTIAL = "sequential_data.txt"
DATAMAPS = "datamaps.json"
ITEM2ATTRIBUTES = "item2attributes.json"
TITLE_PREFIXES = "item_title_prefixes.txt"
META = "meta.json.gz"
USER_NAMES = "user_id2name.pkl"
EXP_SPLITS = "exp_splits.pkl"
REVIEW_SPLITS = "review_splits.pkl"
NEGATIVES = "negative_samples.txt"
P5_FILES = (SEQUENTIAL, DATAMAPS, ITEM2ATTRIBUTES, TITLE_PREFIXES, META, USER_NAMES, EXP_SPLITS, REVIEW_SPLITS, NEGATIVES)
UNUSED = {
    NEGATIVES: "unused: VIP5 never reads it; direct-task candidates are sampled once (seeded) and stored",
    REVIEW_SPLITS: "unused: exp_splits.pkl holds the same reviews plus the feature/explanation the task needs",
}
SPLIT_KEYS = ("train", "val", "test")
# Version of what the importers write from the same input: bump it whenever a change alters the
# imported files, so that datasets imported by an older version are refused with the re-import command.
IMPORTER_VERSION = 1


# ----------------------------------------------------------------------------------------- entry


def import_path(path: Path, root: Path, name: str, *, seed: int = 2022) -> Path:
    """Import PATH (a P5/VIP5 release directory or a plain sequence file) as dataset `name` under `root`."""
    path = Path(path)
    _check_name(name)
    if path.is_dir():
        if (path / SEQUENTIAL).is_file():
            return import_p5_release(path, root, name, seed=seed)
        inner = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / SEQUENTIAL).is_file())
        hint = f"; it has P5 dataset directories inside: {', '.join(inner)} (import one of them)" if inner else ""
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


def _check_name(name: str, root: Path | None = None) -> None:
    check_name(name, root)


# ----------------------------------------------------------------------------------------- pickles


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data only: builtin containers and scalars (which need no class lookup)
    plus the few classes below. Everything else is refused *before* it can be called."""

    ALLOWED = frozenset(
        {
            ("collections", "OrderedDict"),
            ("collections", "defaultdict"),
            # defaultdict default factories and the rare protocol-0/1 encodings of plain containers
            ("builtins", "set"),
            ("builtins", "frozenset"),
            ("builtins", "complex"),
            ("builtins", "list"),
            ("builtins", "dict"),
            ("builtins", "tuple"),
            ("builtins", "int"),
            ("builtins", "float"),
            ("builtins", "str"),
            ("builtins", "bytes"),
            ("builtins", "bytearray"),
            ("builtins", "bool"),
        }
    )

    def __init__(self, file, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        # protocols 0-2 spell builtins the Python 2 way; super() maps the name back
        if ("builtins" if module == "__builtin__" else module, name) in self.ALLOWED:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes  # how protocols 0-2 store bytes: _codecs.encode(text, "latin1")
        raise DataFormatError(
            self._path,
            f"refusing to unpickle {module}.{name}: only plain containers and scalars are allowed "
            "(a data pickle that names a class or function may run arbitrary code)",
        )

    def persistent_load(self, pid):
        raise DataFormatError(self._path, "refusing to unpickle a persistent id: only plain data is allowed")


def _latin1_bytes(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` in old-protocol pickles of bytes: latin-1 text to bytes only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}, {errors!r})")
    return text.encode("latin-1")


def restricted_load(path: Path):
    """Load a pickle of plain data (dict/list/str/int/float/...); refuse anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, path).load()
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, MemoryError, RecursionError, UnicodeDecodeError) as e:
        raise DataFormatError(path, f"not a readable pickle ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------------------- helpers


def _text_lines(path: Path):
    """Yield (lineno, line) of a UTF-8 text file; a decoding error names the line."""
    lineno = 0
    with open(path, "rb") as f:
        for raw in f:
            lineno += 1
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFormatError(path, "not UTF-8 text (save the file as UTF-8)", lineno) from None


def _read_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(path, "not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, f"invalid JSON ({e.msg}, column {e.colno})", e.lineno) from None


def _p5_id(token: str, path: Path, lineno: int, what: str) -> int:
    if not (token.isascii() and token.isdigit()):  # P5 ids are non-negative decimal integers
        raise DataFormatError(path, f"{what} id {token!r} is not a non-negative integer (P5 ids are decimal "
                              "numbers; a file of raw ids such as ASINs imports as a plain sequence file: "
                              "python -m bench data import FILE --name NAME)", lineno)
    return int(token)


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


_ASIN_RE = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]*)['"]""")


def _meta_titles(path: Path, wanted: set[str]) -> dict[str, str]:
    """asin -> title from raw Amazon metadata (one JSON object or Python dict literal a line),
    for the asins in `wanted` only (other lines are not parsed)."""
    titles: dict[str, str] = {}
    lineno = 0
    try:
        with gzip.open(path, "rb") as f:
            for raw in f:
                lineno += 1
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                m = _ASIN_RE.search(line)
                if m and m.group(1) not in wanted:
                    continue  # not one of ours: don't pay for a full parse
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        rec = ast.literal_eval(line)  # raw Amazon metadata is Python literals; never eval
                    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                        raise DataFormatError(path, "neither JSON nor a Python dict literal", lineno) from None
                if not isinstance(rec, dict):
                    raise DataFormatError(path, f"expected an object, got {type(rec).__name__}", lineno)
                asin, title = rec.get("asin"), rec.get("title")
                if isinstance(asin, str) and asin in wanted and isinstance(title, str) and title.strip():
                    titles.setdefault(asin, " ".join(title.split()))
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataFormatError(path, f"not a readable gzip file ({e})", lineno + 1 if lineno else None) from None
    return titles


def _attribute_names(i2a: dict, dm: dict, id2attribute: dict[str, str] | None) -> tuple[dict[str, str], str]:
    """attribute id as used in item2attributes.json -> name, and how the names were matched.

    S3-Rec's ``item2attributes.json`` need not share datamaps' attribute numbering: S3-Rec keeps
    only attributes seen on >= ``attribute_core`` items and renumbers the survivors 1..n in the
    original id order (in the public Beauty release: datamaps has 2,320 attributes, item2attributes
    uses 637 = those with count >= 5). Naming the ids through ``id2attribute`` directly then gives
    wrong names, so the numbering is checked against ``attributeid2num`` (items per attribute):
    used as is when the counts agree, else the renumbering whose counts agree exactly is used.
    """
    if id2attribute is None:
        return {}, "none: datamaps.json has no id2attribute (attribute ids kept as strings)"
    used: dict[int, int] = {}
    for attrs in i2a.values():
        for a in attrs:
            a = str(a)
            if not a.isdigit():
                return id2attribute, "datamaps.json id2attribute (not verified: non-numeric attribute ids)"
            used[int(a)] = used.get(int(a), 0) + 1
    raw_num = dm.get("attributeid2num")
    try:
        num = {int(k): int(v) for k, v in raw_num.items()} if isinstance(raw_num, dict) else None
    except (TypeError, ValueError):
        num = None
    if num is None or not used:
        return id2attribute, "datamaps.json id2attribute (not verified: datamaps.json has no attributeid2num)"
    if all(num.get(a) == c for a, c in used.items()):
        return id2attribute, "datamaps.json id2attribute (item counts agree with attributeid2num)"
    n = max(used)
    target = [used.get(k, 0) for k in range(1, n + 1)]
    order = sorted(num)
    for t in sorted({c for c in num.values() if c > 0}):
        kept = [k for k in order if num[k] >= t]
        if len(kept) < n:
            break
        if len(kept) == n and [num[k] for k in kept] == target and all(str(k) in id2attribute for k in kept):
            return (
                {str(i + 1): id2attribute[str(k)] for i, k in enumerate(kept)},
                f"datamaps.json id2attribute after S3-Rec renumbering: item2attributes ids 1..{n} = datamaps "
                f"attributes with attributeid2num >= {t}, in id order (item counts agree exactly)",
            )
    return {}, (
        "none: item2attributes.json attribute ids do not match datamaps.json (attributeid2num disagrees "
        "with the item counts; no renumbering matched), so attribute ids are kept as strings"
    )


# ----------------------------------------------------------------------------------------- P5 release


def import_p5_release(path: Path, root: Path, name: str, *, seed: int = 2022) -> Path:
    """Import a P5/VIP5 release dataset directory (``data/<ds>/``); any subset of its files."""
    path = Path(path)
    _check_name(name)
    seq_path = path / SEQUENTIAL
    if not seq_path.is_file():
        raise BenchError(f"{path}: not a P5/VIP5 release directory (expected {SEQUENTIAL} in it)")
    found = [f for f in P5_FILES if (path / f).is_file()]
    others = sorted(p.name for p in path.iterdir() if p.name not in P5_FILES and not p.name.startswith("."))
    used = [SEQUENTIAL]
    notes: dict[str, str] = {f: UNUSED[f] for f in found if f in UNUSED}
    prov: dict = {"importer": "p5_release", "source": str(path.resolve())}

    # -- datamaps (read first: it is the item catalogue and validates sequential_data.txt)
    dm: dict = {}
    id2item = id2user = None
    id2attribute: dict[str, str] | None = None
    if DATAMAPS in found:
        dm_path = path / DATAMAPS
        dm = _read_json(dm_path)
        if not isinstance(dm, dict):
            raise DataFormatError(dm_path, "expected a JSON object with user2id/item2id/id2user/id2item")
        id2item = _id_map(dm, "id2item", "item2id", dm_path)
        id2user = _id_map(dm, "id2user", "user2id", dm_path)
        if isinstance(dm.get("id2attribute"), dict):
            id2attribute = {str(k): str(v) for k, v in dm["id2attribute"].items()}
        elif isinstance(dm.get("attribute2id"), dict):
            id2attribute = {str(v): str(k) for k, v in dm["attribute2id"].items()}
        used.append(DATAMAPS)

    # -- sequences
    seqs: dict[int, list[int]] = {}
    line_of: dict[int, int] = {}
    seq_items: set[int] = set()
    for lineno, line in _text_lines(seq_path):
        parts = line.split()
        if not parts:
            continue
        uid = _p5_id(parts[0], seq_path, lineno, "user")
        if uid in line_of:
            raise DataFormatError(seq_path, f"user {uid} appears twice (lines {line_of[uid]} and {lineno}); "
                                  "merge them into one line, items in time order", lineno)
        if len(parts) < 2:
            raise DataFormatError(seq_path, f"user {uid} has no items (expected 'user item item ...'; "
                                  "remove the line or add the user's items)", lineno)
        if id2user is not None and uid not in id2user:
            raise DataFormatError(seq_path, f"user {uid} is not in {DATAMAPS} (id2user); use the datamaps.json "
                                  "of the same release, or remove it to import without raw ids", lineno)
        toks = parts[1:]
        if line.isascii() and all(map(str.isdigit, toks)):  # fast path; ASCII isdigit = 0-9
            items = list(map(int, toks))
        else:
            items = [_p5_id(t, seq_path, lineno, "item") for t in toks]
        if id2item is not None and not id2item.keys() >= set(items):
            bad = next(i for i in items if i not in id2item)
            raise DataFormatError(seq_path, f"item {bad} is not in {DATAMAPS} (id2item); use the datamaps.json "
                                  "of the same release, or remove it to import without raw ids", lineno)
        line_of[uid] = lineno
        seqs[uid] = items
        seq_items.update(items)
    if not seqs:
        raise DataFormatError(seq_path, "no user lines (expected 'user item item ...', one user a line)")

    # -- the item catalogue: every item of sequential_data.txt and datamaps, in P5 id order
    p5_items = sorted(seq_items | set(id2item or ()))
    item_index = {p5: k for k, p5 in enumerate(p5_items)}
    items = [Item(raw_id=id2item[p5] if id2item is not None else str(p5)) for p5 in p5_items]

    # -- users: those with >= MIN_SEQUENCE items, in P5 id order
    kept_uids = sorted(u for u, s in seqs.items() if len(s) >= MIN_SEQUENCE)
    short = [u for u in seqs if len(seqs[u]) < MIN_SEQUENCE]
    if not kept_uids:
        raise DataFormatError(seq_path, f"no user has the {MIN_SEQUENCE} items leave-one-out needs (training, "
                              "validation and test item); give users with at least 3 items")
    user_index = {u: k for k, u in enumerate(kept_uids)}
    users = [User(raw_id=id2user[u] if id2user is not None else str(u)) for u in kept_uids]
    sequences = [[item_index[i] for i in seqs[u]] for u in kept_uids]
    kept_items = {i for u in kept_uids for i in seqs[u]}
    prov["users_dropped_fewer_than_3_items"] = len(short)
    prov["interactions_dropped"] = sum(len(seqs[u]) for u in short)
    prov["items_without_interactions"] = len(p5_items) - len(kept_items)
    if id2user is not None:
        prov["datamaps_users_without_sequence"] = len(set(id2user) - set(seqs))
    prov["item_numbering"] = "stored item id = rank of the P5 item id (= P5 id - 1 when P5 ids are 1..n)"

    raw_index = {it.raw_id: k for k, it in enumerate(items)}

    # -- attributes (S3-Rec item2attributes.json: P5 item id -> attribute ids)
    if ITEM2ATTRIBUTES in found:
        a_path = path / ITEM2ATTRIBUTES
        i2a = _read_json(a_path)
        if not isinstance(i2a, dict):
            raise DataFormatError(a_path, "expected a JSON object (P5 item id -> list of attribute ids)")
        for k, attrs in i2a.items():
            if not isinstance(attrs, list) or not all(isinstance(a, (int, str)) for a in attrs):
                raise DataFormatError(a_path, f"item {k!r}: expected a list of attribute ids")
        attr_name, how = _attribute_names(i2a, dm, id2attribute)
        unknown = unnamed = 0
        for k, attrs in i2a.items():
            ks = str(k)
            if not ks.isdigit() or int(ks) not in item_index:
                unknown += 1
                continue
            names = []
            for a in attrs:
                nm = attr_name.get(str(a))
                unnamed += nm is None and bool(attr_name)
                names.append(str(a) if nm is None else nm)
            items[item_index[int(ks)]].attributes = names
        used.append(ITEM2ATTRIBUTES)
        prov["attributes"] = {
            "items_with_attributes": sum(bool(it.attributes) for it in items),
            "entries_for_unknown_items": unknown,
            "attribute_ids_without_name": unnamed,
            "names": how,
        }

    # -- titles: meta.json.gz title, else the title prefix, else ""
    titles_meta: dict[str, str] = {}
    if META in found:
        titles_meta = _meta_titles(path / META, set(raw_index))
        used.append(META)
    prefixes: dict[str, str] = {}
    prefix_unknown = 0
    if TITLE_PREFIXES in found:
        tp_path = path / TITLE_PREFIXES
        for _lineno, line in _text_lines(tp_path):
            parts = line.split(None, 1)
            if not parts:
                continue
            if parts[0] not in raw_index:
                prefix_unknown += 1
                continue
            prefixes.setdefault(parts[0], " ".join(parts[1].split()) if len(parts) > 1 else "")
        used.append(TITLE_PREFIXES)
    n_meta = n_prefix = 0
    for it in items:
        if it.raw_id in titles_meta:
            it.title, n_meta = titles_meta[it.raw_id], n_meta + 1
        elif prefixes.get(it.raw_id):
            it.title, n_prefix = prefixes[it.raw_id], n_prefix + 1
    prov["titles"] = {"from_meta": n_meta, "from_prefixes": n_prefix, "none": len(items) - n_meta - n_prefix}
    if TITLE_PREFIXES in found:
        prov["titles"]["prefix_lines_for_unknown_items"] = prefix_unknown

    # -- user names
    if USER_NAMES in found:
        n_path = path / USER_NAMES
        names = restricted_load(n_path)
        if not isinstance(names, dict):
            raise DataFormatError(n_path, f"expected a dict (P5 user id -> name), got {type(names).__name__}")
        n_named = 0
        for k, v in names.items():
            ks = str(k)
            if ks.isdigit() and int(ks) in user_index and isinstance(v, str):
                users[user_index[int(ks)]].name = v
                n_named += 1
        used.append(USER_NAMES)
        prov["users_named"] = n_named

    # -- explanation records
    reviews: list[Review] = []
    if EXP_SPLITS in found:
        if not dm:
            notes[EXP_SPLITS] = f"unused: mapping reviewerID/asin to P5 ids needs {DATAMAPS}, which is absent"
        else:
            user2p5 = _raw_to_p5(dm, "user2id", id2user, path / DATAMAPS)
            item2p5 = _raw_to_p5(dm, "item2id", id2item, path / DATAMAPS)
            reviews, rstats = _exp_reviews(path / EXP_SPLITS, user2p5, item2p5, user_index, item_index)
            used.append(EXP_SPLITS)
            prov["reviews"] = rstats

    prov["files_found"] = found
    prov["files_used"] = used
    if notes:
        prov["files_not_used"] = notes
    if others:
        prov["other_entries_ignored"] = others  # e.g. a features/ directory: use `bench features`
    return write_dataset(
        root, name, users=users, items=items, sequences=sequences, reviews=reviews or None,
        provenance=prov, seed=seed, format_version={"by": "bench.data.importers:p5_release", "version": IMPORTER_VERSION},
    )


def _exp_reviews(
    path: Path,
    user2p5: dict[str, int],
    item2p5: dict[str, int],
    user_index: dict[int, int],
    item_index: dict[int, int],
) -> tuple[list[Review], dict]:
    data = restricted_load(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, f"expected a dict with train/val/test lists, got {type(data).__name__}")
    reviews: list[Review] = []
    stats = {"by_split": {}, "unknown_user": 0, "unknown_item": 0, "user_dropped_short_sequence": 0}
    extra = sorted(str(k) for k in data if k not in SPLIT_KEYS)
    if extra:
        stats["ignored_keys"] = extra
    for split in SPLIT_KEYS:
        recs = data.get(split)
        if recs is None:
            continue
        if not isinstance(recs, (list, tuple)):
            raise DataFormatError(path, f"{split!r}: expected a list of review records, got {type(recs).__name__}")
        n = 0
        for k, r in enumerate(recs):
            where = f"{split}[{k}]"
            if not isinstance(r, dict):
                raise DataFormatError(path, f"{where}: expected a dict, got {type(r).__name__}")
            for key in ("reviewerID", "asin", "overall", "feature", "explanation"):
                if key not in r:
                    raise DataFormatError(path, f"{where}: missing key {key!r}")
            rating = r["overall"]
            if isinstance(rating, bool) or not isinstance(rating, (int, float)):
                raise DataFormatError(path, f"{where}: 'overall' must be a number, got {rating!r}")
            if not isinstance(r["feature"], str) or not isinstance(r["explanation"], str):
                raise DataFormatError(path, f"{where}: 'feature' and 'explanation' must be strings")
            uid, iid = user2p5.get(str(r["reviewerID"])), item2p5.get(str(r["asin"]))
            if uid is None:
                stats["unknown_user"] += 1
                continue
            if iid is None or iid not in item_index:
                stats["unknown_item"] += 1
                continue
            if uid not in user_index:
                stats["user_dropped_short_sequence"] += 1
                continue
            headline = r.get("summary", "")
            reviews.append(
                Review(
                    user=user_index[uid], item=item_index[iid], rating=float(rating), feature=r["feature"],
                    explanation=r["explanation"], headline=headline if isinstance(headline, str) else "",
                    split=split,
                )
            )
            n += 1
        stats["by_split"][split] = n
    stats["records_skipped"] = stats["unknown_user"] + stats["unknown_item"] + stats["user_dropped_short_sequence"]
    return reviews, stats


# ----------------------------------------------------------------------------------------- plain file


def import_sequence_file(path: Path, root: Path, name: str, *, seed: int = 2022) -> Path:
    """Import a plain sequence file: ``user item item ...`` one user a line, raw ids, time order.

    ``#`` lines and blank lines are skipped. Items are numbered by first appearance in the file;
    users with fewer than 3 items are dropped (leave-one-out needs 3).
    """
    path = Path(path)
    _check_name(name)
    item_index: dict[str, int] = {}
    line_of: dict[str, int] = {}
    rows: list[tuple[str, list[int]]] = []
    for lineno, line in _text_lines(path):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        user = parts[0]
        if user in line_of:
            raise DataFormatError(path, f"user {user!r} appears twice (lines {line_of[user]} and {lineno}); "
                              "merge them into one line, items in time order", lineno)
        if len(parts) < 2:
            raise DataFormatError(path, f"user {user!r} has no items (expected 'user item item ...'; remove the "
                              "line or add the user's items)", lineno)
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

