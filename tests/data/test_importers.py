"""Importers: the P5/VIP5 release layout (any subset of its files), plain sequence files, safe pickles."""

from __future__ import annotations

import collections
import gzip
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from bench.data import load_dataset
from bench.data.importers import import_p5_release, import_path, import_sequence_file, restricted_load
from bench.errors import BenchError, DataFormatError

N_ITEMS = 130  # the direct task needs >= 99 never-interacted items per user
N_BLOCK_USERS = 26  # users 1..26 see items in blocks of 5: every item appears, P5 ids by first appearance
N_USERS = 30  # P5 users 1..30 have >= 3 items
SHORT = {31: [7, 8], 32: [9]}  # P5 users with < 3 items: dropped


def asin(p5_item: int) -> str:
    return f"B{p5_item:09d}"


def reviewer(p5_user: int) -> str:
    return f"A{p5_user:05d}"


def p5_sequences() -> dict[int, list[int]]:
    rng = np.random.default_rng(0)
    seqs = {}
    for u in range(1, N_BLOCK_USERS + 1):
        seqs[u] = list(range(5 * (u - 1) + 1, 5 * u + 1))
    for u in range(N_BLOCK_USERS + 1, N_USERS + 1):
        seqs[u] = (rng.choice(N_ITEMS, size=3 + u % 4, replace=False) + 1).tolist()
    seqs.update(SHORT)
    return seqs


def write_seq(d: Path, seqs: dict[int, list[int]]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "sequential_data.txt").write_text("".join(f"{u} {' '.join(map(str, s))}\n" for u, s in seqs.items()))


ATTRS = ["Brand A", "Brand B", "Makeup", "Face", "Nails"]  # attribute ids 1..5


def item_attr_ids(p5_item: int) -> list[int]:
    return [1 + p5_item % 2, 3 + p5_item % 3]


def datamaps() -> dict:
    users = list(range(1, N_USERS + 1)) + list(SHORT)
    counts = collections.Counter(a for i in range(1, N_ITEMS + 1) for a in item_attr_ids(i))
    return {
        "user2id": {reviewer(u): str(u) for u in users},
        "item2id": {asin(i): str(i) for i in range(1, N_ITEMS + 1)},
        "id2user": {str(u): reviewer(u) for u in users},
        "id2item": {str(i): asin(i) for i in range(1, N_ITEMS + 1)},
        "attribute2id": {a: k for k, a in enumerate(ATTRS, 1)},
        "id2attribute": {str(k): a for k, a in enumerate(ATTRS, 1)},
        "attributeid2num": {str(k): counts[k] for k in range(1, len(ATTRS) + 1)},
    }


def exp_record(u: int, i: int, k: int, split: str) -> dict:
    return {
        "reviewerID": reviewer(u), "asin": asin(i), "reviewerName": f"name {u}", "overall": float(1 + k % 5),
        "summary": f"headline {k}", "reviewText": "text", "feature": f"feat{k}", "explanation": f"expl {split} {k}",
        "unixReviewTime": 1400000000 + k, "helpful": [0, 0],
    }


def exp_splits() -> dict:
    seqs = p5_sequences()
    out = {"train": [], "val": [], "test": []}
    k = 0
    for u in range(1, N_USERS + 1):
        for j, i in enumerate(seqs[u][:3]):
            split = ("train", "val", "test")[j] if u % 3 == 0 else "train"
            out[split].append(exp_record(u, i, k, split))
            k += 1
    out["train"].append({**exp_record(99, 1, 900, "train"), "reviewerID": "A_UNKNOWN"})  # unknown user
    out["train"].append({**exp_record(1, 1, 901, "train"), "asin": "B_UNKNOWN"})  # unknown item
    out["val"].append(exp_record(31, 7, 902, "val"))  # user dropped (< 3 items)
    return out


def make_release(d: Path, *files: str) -> Path:
    """A small fake P5/VIP5 release directory with sequential_data.txt plus `files`."""
    write_seq(d, p5_sequences())
    if "datamaps" in files:
        (d / "datamaps.json").write_text(json.dumps(datamaps()))
    if "attributes" in files:
        (d / "item2attributes.json").write_text(json.dumps({str(i): item_attr_ids(i) for i in range(1, N_ITEMS + 1)}))
    if "names" in files:
        with open(d / "user_id2name.pkl", "wb") as f:
            pickle.dump({str(u): f"name {u}" for u in range(1, N_USERS + 1)}, f)
    if "exp" in files:
        with open(d / "exp_splits.pkl", "wb") as f:
            pickle.dump(exp_splits(), f)
    if "prefixes" in files:
        (d / "item_title_prefixes.txt").write_text("".join(f"{asin(i)} prefix {i}\n" for i in range(1, N_ITEMS + 1)))
    if "meta" in files:
        with gzip.open(d / "meta.json.gz", "wt") as f:
            for i in range(1, N_ITEMS + 1):
                if i % 4 == 0:
                    continue  # no metadata: the title falls back to the prefix
                rec = {"asin": asin(i), "title": f"Full Title {i}", "categories": [["Beauty"]]}
                f.write((json.dumps(rec) if i % 2 else repr(rec)) + "\n")  # JSON and Python-literal lines
            f.write("{'asin': 'NOT_OURS', 'title': broken python literal\n")  # not ours: never parsed
    if "extra" in files:
        with open(d / "review_splits.pkl", "wb") as f:
            pickle.dump({"train": [], "val": [], "test": []}, f)
        (d / "negative_samples.txt").write_text("1 2 3\n")
    return d


def stored_items(root: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (root / name / "items.jsonl").read_text().splitlines()]


def raw_sequences(data) -> list[list[str]]:
    return [[data.items[i].raw_id for i in s] for s in data.sequences]


# ----------------------------------------------------------------------------------------- P5 release


def test_only_sequential_data(tmp_path):
    src = make_release(tmp_path / "src")
    out = import_path(src, tmp_path / "root", "p5")
    assert out == tmp_path / "root" / "p5"
    d = load_dataset("p5", tmp_path / "root")
    seqs = p5_sequences()
    assert (d.n_users, d.n_items) == (N_USERS, N_ITEMS)
    assert d.manifest["counts"]["interactions"] == sum(len(seqs[u]) for u in range(1, N_USERS + 1))
    assert d.tasks == ["sequential", "direct"]
    # stored item id = P5 id - 1, raw id = the P5 id string; users keep their P5 ids as raw ids
    assert [r["raw_id"] for r in stored_items(tmp_path / "root", "p5")] == [str(i) for i in range(1, N_ITEMS + 1)]
    assert [u.raw_id for u in d.users] == [str(u) for u in range(1, N_USERS + 1)]
    assert raw_sequences(d) == [[str(i) for i in seqs[u]] for u in range(1, N_USERS + 1)]
    prov = d.manifest["provenance"]
    assert prov["importer"] == "p5_release" and prov["source"] == str(src.resolve())
    assert prov["files_used"] == ["sequential_data.txt"]
    assert prov["users_dropped_fewer_than_3_items"] == 2
    assert prov["interactions_dropped"] == 3


def test_with_datamaps_raw_ids_are_asins_and_reviewer_ids(tmp_path):
    src = make_release(tmp_path / "src", "datamaps")
    import_p5_release(src, tmp_path, "p5")
    d = load_dataset("p5", tmp_path, indexing="sequential")
    seqs = p5_sequences()
    assert [u.raw_id for u in d.users] == [reviewer(u) for u in range(1, N_USERS + 1)]
    assert raw_sequences(d) == [[asin(i) for i in seqs[u]] for u in range(1, N_USERS + 1)]
    assert [r["raw_id"] for r in stored_items(tmp_path, "p5")] == [asin(i) for i in range(1, N_ITEMS + 1)]
    # P5 numbered items by first appearance, so sequential indexing gives back P5 id - 1
    assert [it.raw_id for it in d.items] == [asin(i) for i in range(1, N_ITEMS + 1)]
    assert d.manifest["provenance"]["datamaps_users_without_sequence"] == 0
    assert all(it.title == "" and it.attributes == [] for it in d.items)


def test_attributes_titles_and_names(tmp_path):
    src = make_release(tmp_path / "src", "datamaps", "attributes", "names", "meta", "prefixes", "extra")
    import_path(src, tmp_path, "p5")
    d = load_dataset("p5", tmp_path, indexing="sequential")
    for i in range(1, N_ITEMS + 1):
        it = d.items[i - 1]
        assert it.raw_id == asin(i)
        assert it.attributes == [ATTRS[a - 1] for a in item_attr_ids(i)]
        assert it.title == (f"prefix {i}" if i % 4 == 0 else f"Full Title {i}")  # meta title first, then prefix
    assert [u.name for u in d.users] == [f"name {u}" for u in range(1, N_USERS + 1)]
    prov = d.manifest["provenance"]
    assert prov["titles"] == {"from_meta": 98, "from_prefixes": 32, "none": 0, "prefix_lines_for_unknown_items": 0}
    assert "agree" in prov["attributes"]["names"]
    assert set(prov["files_used"]) == {
        "sequential_data.txt", "datamaps.json", "item2attributes.json", "user_id2name.pkl", "meta.json.gz",
        "item_title_prefixes.txt",
    }
    assert set(prov["files_not_used"]) == {"negative_samples.txt", "review_splits.pkl"}
    assert "VIP5 never" in prov["files_not_used"]["negative_samples.txt"]
    assert d.tasks == ["sequential", "direct"]


def test_attributes_without_datamaps_keep_ids(tmp_path):
    src = make_release(tmp_path / "src", "attributes")
    import_path(src, tmp_path, "p5")
    d = load_dataset("p5", tmp_path, indexing="sequential")
    assert d.items[4].attributes == [str(a) for a in item_attr_ids(5)]


def test_s3rec_renumbered_attributes_get_the_right_names(tmp_path):
    """S3-Rec's item2attributes keeps only attributes with >= 5 items and renumbers them 1..n (as in the
    public Beauty release); naming its ids through datamaps' id2attribute directly would be wrong."""
    src = make_release(tmp_path / "src", "datamaps")
    dm = datamaps()
    names = ["Rare X", "Makeup", "Rare Y", "Face", "Nails"]  # datamaps ids 1..5; ids 1 and 3 on < 5 items
    i2a_p5 = {i: [2, 4 + i % 2] for i in range(1, N_ITEMS + 1)}
    i2a_p5[1] = [1, 2, 4]
    i2a_p5[2] = [3, 2, 5]
    counts = collections.Counter(a for v in i2a_p5.values() for a in v)
    dm["id2attribute"] = {str(k): a for k, a in enumerate(names, 1)}
    dm["attribute2id"] = {a: k for k, a in enumerate(names, 1)}
    dm["attributeid2num"] = {str(k): counts[k] for k in range(1, 6)}
    s3_id = {2: 1, 4: 2, 5: 3}  # the survivors (count >= 5), renumbered in id order
    i2a_s3 = {str(i): [s3_id[a] for a in v if a in s3_id] for i, v in i2a_p5.items()}
    (src / "datamaps.json").write_text(json.dumps(dm))
    (src / "item2attributes.json").write_text(json.dumps(i2a_s3))
    import_path(src, tmp_path, "p5")
    d = load_dataset("p5", tmp_path, indexing="sequential")
    for i in range(1, N_ITEMS + 1):
        assert d.items[i - 1].attributes == [names[a - 1] for a in i2a_p5[i] if a in s3_id]
    assert "renumbering" in d.manifest["provenance"]["attributes"]["names"]


def test_exp_splits_give_the_explanation_task(tmp_path):
    src = make_release(tmp_path / "src", "datamaps", "exp")
    import_path(src, tmp_path, "p5")
    d = load_dataset("p5", tmp_path)  # random indexing: reviews must follow the item relabelling
    assert d.tasks == ["sequential", "direct", "explanation"]
    want = exp_splits()
    got = {s: [(d.users[r.user].raw_id, d.items[r.item].raw_id, r.rating, r.feature, r.explanation, r.headline)
               for r in d.review_split(s)] for s in ("train", "val", "test")}
    for split in ("train", "val", "test"):
        expect = [
            (r["reviewerID"], r["asin"], r["overall"], r["feature"], r["explanation"], r["summary"])
            for r in want[split]
            if r["reviewerID"] not in ("A_UNKNOWN", reviewer(31)) and r["asin"] != "B_UNKNOWN"
        ]
        assert got[split] == expect, split
    assert len(got["val"]) == len(got["test"]) == N_USERS // 3
    stats = d.manifest["provenance"]["reviews"]
    assert stats["unknown_user"] == 1 and stats["unknown_item"] == 1 and stats["user_dropped_short_sequence"] == 1
    assert stats["records_skipped"] == 3
    assert stats["by_split"] == {"train": len(got["train"]), "val": 10, "test": 10}
    assert d.manifest["counts"]["reviews"] == sum(len(v) for v in got.values())


def test_exp_splits_without_datamaps_is_reported_not_used(tmp_path):
    src = make_release(tmp_path / "src", "exp")
    import_path(src, tmp_path, "p5")
    d = load_dataset("p5", tmp_path)
    assert d.tasks == ["sequential", "direct"]
    assert "datamaps.json" in d.manifest["provenance"]["files_not_used"]["exp_splits.pkl"]


# ----------------------------------------------------------------------------------------- pickles


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    src = make_release(tmp_path / "src", "datamaps")
    with open(src / "exp_splits.pkl", "wb") as f:
        pickle.dump({"train": [_Evil(marker)], "val": [], "test": []}, f)
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "p5")
    assert "refusing to unpickle" in str(e.value) and "system" in str(e.value)
    assert str(src / "exp_splits.pkl") in str(e.value)
    assert not marker.exists()
    assert not (tmp_path / "root" / "p5").exists()


def test_restricted_load_admits_plain_data_only(tmp_path):
    ok = {"a": [1, 2.5, "x", None, True, b"b", (1, 2)], "s": {1, 2}, "f": frozenset({3}), "c": 1 + 2j,
          "od": collections.OrderedDict(a=1), "dd": collections.defaultdict(list, {"k": [1]})}
    for proto in (0, 2, pickle.HIGHEST_PROTOCOL):
        p = tmp_path / f"ok{proto}.pkl"
        p.write_bytes(pickle.dumps(ok, protocol=proto))
        assert restricted_load(p) == ok
    bad = tmp_path / "numpy.pkl"
    bad.write_bytes(pickle.dumps({"x": np.arange(3)}))
    with pytest.raises(DataFormatError, match="refusing to unpickle numpy"):
        restricted_load(bad)
    trunc = tmp_path / "trunc.pkl"
    trunc.write_bytes(pickle.dumps(ok)[:20])
    with pytest.raises(DataFormatError, match="not a readable pickle"):
        restricted_load(trunc)


def test_user_names_pickle_is_read_safely(tmp_path):
    marker = tmp_path / "pwned"
    src = make_release(tmp_path / "src")
    with open(src / "user_id2name.pkl", "wb") as f:
        pickle.dump({"1": _Evil(marker)}, f)
    with pytest.raises(DataFormatError, match="user_id2name.pkl.*refusing to unpickle"):
        import_path(src, tmp_path / "root", "p5")
    assert not marker.exists()


# ----------------------------------------------------------------------------------------- malformed P5 input


def test_non_integer_id_names_file_and_line(tmp_path):
    src = make_release(tmp_path / "src")
    lines = (src / "sequential_data.txt").read_text().splitlines()
    lines[6] = lines[6] + " B00X"
    (src / "sequential_data.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "p5")
    assert f"{src / 'sequential_data.txt'}:7" in str(e.value) and "'B00X'" in str(e.value)
    assert e.value.line == 7


def test_malformed_datamaps_json_names_file_and_line(tmp_path):
    src = make_release(tmp_path / "src")
    (src / "datamaps.json").write_text('{\n  "user2id": {"A": "1"},\n  "item2id": {"B": "1",,}\n}\n')
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "p5")
    assert f"{src / 'datamaps.json'}:3" in str(e.value) and "invalid JSON" in str(e.value)


def test_item_absent_from_datamaps_names_file_and_line(tmp_path):
    src = make_release(tmp_path / "src", "datamaps")
    seqs = p5_sequences()
    seqs[5] = seqs[5] + [N_ITEMS + 7]
    write_seq(src, seqs)
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "p5")
    assert f"{src / 'sequential_data.txt'}:5" in str(e.value) and f"item {N_ITEMS + 7}" in str(e.value)


def test_duplicate_p5_user_names_both_lines(tmp_path):
    src = make_release(tmp_path / "src")
    with open(src / "sequential_data.txt", "a") as f:
        f.write("3 1 2 3\n")
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "p5")
    assert "lines 3 and 33" in str(e.value) and str(src / "sequential_data.txt") in str(e.value)


def test_malformed_meta_line_of_our_item_names_file_and_line(tmp_path):
    src = make_release(tmp_path / "src", "datamaps")
    with gzip.open(src / "meta.json.gz", "wt") as f:
        f.write(repr({"asin": asin(1), "title": "ok"}) + "\n")
        f.write("{'asin': '" + asin(2) + "', 'title': __import__('os').system('echo pwned')}\n")
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "p5")
    assert f"{src / 'meta.json.gz'}:2" in str(e.value)


def test_import_path_rejects_other_things(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchError, match="sequential_data.txt") as e:
        import_path(empty, tmp_path / "root", "x")
    assert str(empty) in str(e.value)
    with pytest.raises(BenchError, match="no such file") as e:
        import_path(tmp_path / "missing", tmp_path / "root", "x")
    assert str(tmp_path / "missing") in str(e.value)
    make_release(tmp_path / "data" / "beauty")
    with pytest.raises(BenchError, match="beauty"):
        import_path(tmp_path / "data", tmp_path / "root", "x")
    with pytest.raises(BenchError, match="invalid dataset name"):
        import_path(tmp_path / "data" / "beauty", tmp_path / "root", "../escape")


# ----------------------------------------------------------------------------------------- plain sequence file


def plain_lines() -> list[str]:
    lines = ["# user item item ...", ""]
    for u in range(20):
        toks = [f"item-{(7 * u + j) % N_ITEMS}" for j in range(3 + u % 5)]
        lines.append(f"user{u}\t" + " ".join(toks))
    lines += ["shorty item-1 item-2", "   # indented comment", "tiny item-3"]
    for b in range(5):  # every item appears somewhere; each user still leaves >= 99 negatives
        lines.append(f"cover{b} " + " ".join(f"item-{i}" for i in range(26 * b, 26 * (b + 1))))
    return lines


def test_plain_sequence_file(tmp_path):
    path = tmp_path / "seqs.txt"
    lines = plain_lines()
    path.write_text("\n".join(lines) + "\n")
    out = import_path(path, tmp_path / "root", "plain")
    d = load_dataset("plain", tmp_path / "root")
    rows = [ln.split() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    kept = [r for r in rows if len(r) >= 4]
    assert [u.raw_id for u in d.users] == [r[0] for r in kept]
    assert raw_sequences(d) == [r[1:] for r in kept]
    first_seen = list(dict.fromkeys(t for r in rows for t in r[1:]))
    assert [r["raw_id"] for r in stored_items(out.parent, "plain")] == first_seen
    assert d.n_items == N_ITEMS
    assert d.manifest["counts"]["interactions"] == sum(len(r) - 1 for r in kept)
    prov = d.manifest["provenance"]
    assert prov["importer"] == "sequence_file"
    assert prov["users_dropped_fewer_than_3_items"] == 2 and prov["interactions_dropped"] == 3
    assert d.tasks == ["sequential", "direct"]


def test_import_sequence_file_directly_on_p5_numbers(tmp_path):
    src = make_release(tmp_path / "src")
    import_sequence_file(src / "sequential_data.txt", tmp_path, "p5plain")
    d = load_dataset("p5plain", tmp_path, indexing="sequential")
    assert (d.n_users, d.n_items) == (N_USERS, N_ITEMS)
    assert [it.raw_id for it in d.items] == [str(i) for i in range(1, N_ITEMS + 1)]


def test_plain_user_without_items_names_line(tmp_path):
    path = tmp_path / "seqs.txt"
    path.write_text("# header\nu1 a b c\n\nu2\nu3 a b c\n")
    with pytest.raises(DataFormatError) as e:
        import_path(path, tmp_path / "root", "plain")
    assert f"{path}:4" in str(e.value) and "no items" in str(e.value)


def test_plain_duplicate_user_names_both_lines(tmp_path):
    path = tmp_path / "seqs.txt"
    path.write_text("u1 a b c\n# c\nu2 a b c\nu1 d e f\n")
    with pytest.raises(DataFormatError) as e:
        import_path(path, tmp_path / "root", "plain")
    assert f"{path}:4" in str(e.value) and "lines 1 and 4" in str(e.value)


def test_plain_file_that_is_not_text(tmp_path):
    path = tmp_path / "seqs.bin"
    path.write_bytes(b"u1 a b c\n\xff\xfe\x00 x y z\n")
    with pytest.raises(DataFormatError) as e:
        import_path(path, tmp_path / "root", "plain")
    assert f"{path}:2" in str(e.value)


# ----------------------------------------------------------------------------------------- real data


BEAUTY = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "amazon-beauty"


@pytest.mark.slow
def test_import_real_amazon_beauty(tmp_path):
    if not (BEAUTY / "sequential_data.txt").is_file():
        pytest.skip(f"{BEAUTY} not present")
    t0 = time.perf_counter()
    import_path(BEAUTY, tmp_path, "beauty")
    elapsed = time.perf_counter() - t0
    print(f"\nimported Amazon Beauty in {elapsed:.1f}s")
    d = load_dataset("beauty", tmp_path, indexing="sequential")
    assert (d.n_users, d.n_items) == (22_363, 12_101)
    assert d.manifest["counts"]["interactions"] == 198_502
    assert d.manifest["provenance"]["users_dropped_fewer_than_3_items"] == 0
    assert sum(bool(it.title) for it in d.items) >= 12_000
    assert all(it.attributes for it in d.items)
    # P5 numbered items by first appearance in sequential_data.txt: model-facing id = P5 id - 1
    dm = json.loads((BEAUTY / "datamaps.json").read_text())
    assert [it.raw_id for it in d.items] == [dm["id2item"][str(k)] for k in range(1, d.n_items + 1)]
    with open(BEAUTY / "sequential_data.txt") as f:
        p5 = [[int(t) - 1 for t in line.split()[1:]] for line in f]
    assert [s.tolist() for s in d.sequences] == p5
    assert [u.raw_id for u in d.users] == [dm["id2user"][str(u)] for u in range(1, d.n_users + 1)]
    # attribute names are right (item2attributes.json uses S3-Rec's renumbering, not datamaps' ids)
    first = d.items[0]
    assert first.raw_id == "B004756YJA" and "Nail Polish" in first.attributes
