"""Readers of a P5/VIP5 release's optional files that annotate the catalogue built from
``sequential_data.txt``: item attributes (``item2attributes.json``), titles (``meta.json.gz``
and ``item_title_prefixes.txt``), user names (``user_id2name.pkl``) and the review records of
``exp_splits.pkl``.

Each reader takes the file's path and the P5 id -> stored index maps of the catalogue, fills in
the items/users it names (entries for items or users outside the catalogue are counted, not
imported) and returns what it found for the dataset's provenance.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path

from bench.data.import_common import read_json, restricted_load, text_lines
from bench.data.store import Item, Review, User
from bench.errors import DataFormatError

SPLIT_KEYS = ("train", "val", "test")
_ASIN_RE = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]*)['"]""")


# ----------------------------------------------------------------------------------------- attributes


def read_item_attributes(
    path: Path, dm: dict, id2attribute: dict[str, str] | None, items: list[Item], item_index: dict[int, int]
) -> dict:
    """Set the attributes of the items named in S3-Rec's item2attributes.json (P5 item id ->
    attribute ids), by name where datamaps names them; returns the provenance entry."""
    i2a = read_json(path)
    if not isinstance(i2a, dict):
        raise DataFormatError(path, "expected a JSON object (P5 item id -> list of attribute ids)")
    for k, attrs in i2a.items():
        if not isinstance(attrs, list) or not all(isinstance(a, (int, str)) for a in attrs):
            raise DataFormatError(path, f"item {k!r}: expected a list of attribute ids")
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
    return {
        "items_with_attributes": sum(bool(it.attributes) for it in items),
        "entries_for_unknown_items": unknown,
        "attribute_ids_without_name": unnamed,
        "names": how,
    }


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


# ----------------------------------------------------------------------------------------- titles


def read_meta_titles(path: Path, wanted: set[str]) -> dict[str, str]:
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
                rec = _meta_record(line, path, lineno)
                asin, title = rec.get("asin"), rec.get("title")
                if isinstance(asin, str) and asin in wanted and isinstance(title, str) and title.strip():
                    titles.setdefault(asin, " ".join(title.split()))
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        where = lineno + 1 if lineno else None
        raise DataFormatError(path, f"not a readable gzip file ({e})", where) from None
    return titles


def _meta_record(line: str, path: Path, lineno: int) -> dict:
    """One metadata line as a dict: JSON, or the Python literal raw Amazon metadata is written in."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        try:
            rec = ast.literal_eval(line)  # raw Amazon metadata is Python literals; never eval
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise DataFormatError(path, "neither JSON nor a Python dict literal", lineno) from None
    if not isinstance(rec, dict):
        raise DataFormatError(path, f"expected an object, got {type(rec).__name__}", lineno)
    return rec


def read_title_prefixes(path: Path, wanted: set[str]) -> tuple[dict[str, str], int]:
    """raw id -> title prefix (``raw_id prefix words`` a line) for the raw ids in `wanted`, and
    how many lines named other items."""
    prefixes: dict[str, str] = {}
    unknown = 0
    for _lineno, line in text_lines(path):
        parts = line.split(None, 1)
        if not parts:
            continue
        if parts[0] not in wanted:
            unknown += 1
            continue
        prefixes.setdefault(parts[0], " ".join(parts[1].split()) if len(parts) > 1 else "")
    return prefixes, unknown


def assign_titles(items: list[Item], titles_meta: dict[str, str], prefixes: dict[str, str]) -> dict:
    """Title each item: its metadata title, else its non-empty title prefix, else none; the counts."""
    n_meta = n_prefix = 0
    for it in items:
        if it.raw_id in titles_meta:
            it.title, n_meta = titles_meta[it.raw_id], n_meta + 1
        elif prefixes.get(it.raw_id):
            it.title, n_prefix = prefixes[it.raw_id], n_prefix + 1
    return {"from_meta": n_meta, "from_prefixes": n_prefix, "none": len(items) - n_meta - n_prefix}


# ----------------------------------------------------------------------------------------- user names


def read_user_names(path: Path, users: list[User], user_index: dict[int, int]) -> int:
    """Name the users of user_id2name.pkl (P5 user id -> name); returns how many were named."""
    names = restricted_load(path)
    if not isinstance(names, dict):
        raise DataFormatError(path, f"expected a dict (P5 user id -> name), got {type(names).__name__}")
    n_named = 0
    for k, v in names.items():
        ks = str(k)
        if ks.isdigit() and int(ks) in user_index and isinstance(v, str):
            users[user_index[int(ks)]].name = v
            n_named += 1
    return n_named


# ----------------------------------------------------------------------------------------- reviews


def read_exp_reviews(
    path: Path,
    user2p5: dict[str, int],
    item2p5: dict[str, int],
    user_index: dict[int, int],
    item_index: dict[int, int],
) -> tuple[list[Review], dict]:
    """The review records of exp_splits.pkl (train/val/test lists) whose user and item are in the
    catalogue, and the counts of those imported and skipped."""
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
            raise DataFormatError(
                path, f"{split!r}: expected a list of review records, got {type(recs).__name__}"
            )
        n = 0
        for k, r in enumerate(recs):
            _check_record(path, f"{split}[{k}]", r)
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
            reviews.append(_review(r, user_index[uid], item_index[iid], split))
            n += 1
        stats["by_split"][split] = n
    stats["records_skipped"] = (
        stats["unknown_user"] + stats["unknown_item"] + stats["user_dropped_short_sequence"]
    )
    return reviews, stats


def _check_record(path: Path, where: str, r) -> None:
    """Refuse a review record that is not a dict with the fields the import reads, well typed."""
    if not isinstance(r, dict):
        raise DataFormatError(path, f"{where}: expected a dict, got {type(r).__name__}")
    for key in ("reviewerID", "asin", "overall", "feature", "explanation"):  # not a task: release fields
        if key not in r:
            raise DataFormatError(path, f"{where}: missing key {key!r}")
    rating = r["overall"]
    if isinstance(rating, bool) or not isinstance(rating, (int, float)):
        raise DataFormatError(path, f"{where}: 'overall' must be a number, got {rating!r}")
    if not isinstance(r["feature"], str) or not isinstance(r["explanation"], str):  # not a task: a field
        raise DataFormatError(path, f"{where}: 'feature' and 'explanation' must be strings")


def _review(r: dict, user: int, item: int, split: str) -> Review:
    """A checked record as a Review of stored user/item ids (a non-string summary: no headline)."""
    headline = r.get("summary", "")
    return Review(
        user=user, item=item, rating=float(r["overall"]), feature=r["feature"],
        explanation=r["explanation"],  # not a task: a field
        headline=headline if isinstance(headline, str) else "", split=split,
    )
