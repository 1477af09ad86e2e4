"""The canonical dataset format: writing, validated loading, splits and item indexing."""

import json

import numpy as np
import pytest

from bench.data import Item, Review, User, load_dataset, write_dataset
from bench.data.splits import item_permutation, split_reviews
from bench.errors import DataFormatError, UnknownNameError

N_USERS, N_ITEMS = 40, 130


def _sequences(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.choice(N_ITEMS, size=rng.integers(3, 12), replace=False).tolist() for _ in range(N_USERS)]


@pytest.fixture()
def root(tmp_path):
    seqs = _sequences()
    reviews = [Review(u, s[0], 4.0, "color", f"nice color {u}") for u, s in enumerate(seqs)] * 3
    reviews = [Review(r.user, r.item, r.rating, r.feature, r.explanation) for r in reviews]
    write_dataset(
        tmp_path, "toy", users=[User(f"u{u}", f"name{u}") for u in range(N_USERS)],
        items=[Item(f"i{i}", f"title {i}", [f"brand:{i % 3}"]) for i in range(N_ITEMS)], sequences=seqs,
        reviews=reviews, features={"f8": np.ones((N_ITEMS, 8))}, seed=5,
    )
    return tmp_path


def test_round_trip_counts_and_tasks(root):
    d = load_dataset("toy", root)
    assert (d.n_users, d.n_items) == (N_USERS, N_ITEMS)
    assert d.tasks == ["sequential", "direct", "explanation"]
    assert d.manifest["counts"]["interactions"] == sum(len(s) for s in _sequences())
    assert d.features("f8").shape == (N_ITEMS, 8)


@pytest.mark.parametrize("indexing", ["random", "sequential"])
def test_candidates_hold_target_and_99_never_interacted_items(root, indexing):
    d = load_dataset("toy", root, indexing=indexing)
    for split, cut in (("val", -2), ("test", -1)):
        cands = d.candidates[split]
        assert cands.shape == (N_USERS, 100)
        for u, seq in enumerate(d.sequences):
            row = cands[u].tolist()
            assert len(set(row)) == 100 and seq[cut] in row
            assert not (set(row) - {int(seq[cut])}) & set(seq.tolist())


def test_indexings_are_relabelings_of_the_same_data(root):
    a, b = load_dataset("toy", root, indexing="random"), load_dataset("toy", root, indexing="sequential")
    raw_a = [[a.items[i].raw_id for i in s] for s in a.sequences]
    raw_b = [[b.items[i].raw_id for i in s] for s in b.sequences]
    assert raw_a == raw_b
    assert a.features("f8").shape == b.features("f8").shape


def test_sequential_indexing_numbers_by_first_appearance():
    seqs = [np.array([5, 2, 7]), np.array([2, 9, 5, 1])]
    perm = item_permutation("sequential", seqs, 10, seed=0)
    assert [perm[i] for i in (5, 2, 7, 9, 1)] == [0, 1, 2, 3, 4]
    assert sorted(perm.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="unknown indexing"):
        item_permutation("alphabetical", seqs, 10, seed=0)


def test_leave_one_out_queries(root):
    d = load_dataset("toy", root)
    s = d.sequences[3]
    val, test = d.rank_queries("sequential", "val")[3], d.rank_queries("direct", "test")[3]
    assert val.history.tolist() == s[:-2].tolist() and val.candidates is None
    assert test.history.tolist() == s[:-1].tolist() and test.candidates is not None
    assert d.rank_targets("val")[3] == s[-2] and d.rank_targets("test")[3] == s[-1]


def test_explanation_split_is_8_1_1_with_every_user_and_item_in_train():
    rng = np.random.default_rng(1)
    recs = [
        Review(int(u), int(i), 5.0, "f", "e")
        for u, i in zip(rng.integers(0, 50, 1000), rng.integers(0, 80, 1000), strict=False)
    ]
    split_reviews(recs, seed=0)
    counts = {s: sum(r.split == s for r in recs) for s in ("train", "val", "test")}
    assert counts == {"train": 800, "val": 100, "test": 100}
    train = [r for r in recs if r.split == "train"]
    assert {r.user for r in train} == {r.user for r in recs} and {r.item for r in train} == {r.item for r in recs}


def test_edited_file_fails_checksum_and_bad_line_names_file_and_line(root):
    path = root / "toy" / "sequences.txt"
    lines = path.read_text().splitlines()
    lines[6] = "6 1 2 x3"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="sequences.txt: checksum"):
        load_dataset("toy", root)
    with pytest.raises(DataFormatError, match=r"sequences.txt:7: not a non-negative integer id: 'x3'"):
        load_dataset("toy", root, verify=False)


def test_bad_jsonl_line_is_named(root):
    path = root / "toy" / "items.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = json.dumps({"id": 2, "title": "no raw id"})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"items.jsonl:3: missing field 'raw_id'"):
        load_dataset("toy", root, verify=False)


def test_failed_write_keeps_the_existing_dataset(root):
    before = (root / "toy" / "sequences.txt").read_text()
    with pytest.raises(ValueError, match="leave-one-out needs >= 3"):
        write_dataset(root, "toy", users=[User("a")], items=[Item(f"i{i}") for i in range(200)], sequences=[[1, 2]])
    assert (root / "toy" / "sequences.txt").read_text() == before
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_unknown_dataset_and_feature_set_list_known_names(root):
    with pytest.raises(UnknownNameError, match="known datasets: synthetic, toy"):
        load_dataset("toys", root)
    with pytest.raises(UnknownNameError, match="known feature sets: f8"):
        load_dataset("toy", root).features("clip")
