"""The embedded synthetic dataset: deterministic, complete, in the canonical format, and its
hidden visual style stays out of the text."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import load_dataset
from bench.data.synthetic import generate
from bench.data.synthetic_vocab import STYLE_NAMES
from bench.data.synthetic_world import build_world

SMALL = {"n_users": 60, "n_items": 150}
COMPARED = ["users.jsonl", "items.jsonl", "sequences.txt", "candidates_val.txt", "candidates_test.txt",
            "reviews.jsonl", "features/synthetic.npy", "features/synthetic.items.txt"]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    generate(root, "small", seed=7, **SMALL)
    return root


@pytest.fixture(scope="module")
def data(small):
    return load_dataset("small", small)


def _manifest_without_time(ds: Path) -> dict:
    m = json.loads((ds / "manifest.json").read_text())
    m.pop("created")
    return m


def test_same_seed_gives_identical_files(small, tmp_path):
    again = generate(tmp_path, "small", seed=7, **SMALL)
    for rel in COMPARED:
        assert (small / "small" / rel).read_bytes() == (again / rel).read_bytes(), rel
    images = sorted(p.name for p in (again / "images").iterdir())
    assert images == sorted(p.name for p in (small / "small" / "images").iterdir())
    assert all((again / "images" / n).read_bytes() == (small / "small" / "images" / n).read_bytes() for n in images)
    assert _manifest_without_time(small / "small") == _manifest_without_time(again)


def test_different_seed_differs(small, tmp_path):
    other = generate(tmp_path, "small", seed=8, **SMALL)
    for rel in ("sequences.txt", "items.jsonl", "features/synthetic.npy"):
        assert (small / "small" / rel).read_bytes() != (other / rel).read_bytes(), rel


def test_manifest_counts_and_tasks(small, data):
    m = json.loads((small / "small" / "manifest.json").read_text())
    assert m["counts"]["users"] == SMALL["n_users"] == data.n_users
    assert m["counts"]["items"] == SMALL["n_items"] == data.n_items
    assert m["counts"]["interactions"] == sum(len(s) for s in data.sequences)
    assert m["counts"]["reviews"] == len(data.reviews) > 0
    assert m["counts"]["images"] == SMALL["n_items"]
    assert m["seed"] == 7
    assert set(m["tasks"]) == {"sequential", "direct", "explanation"}
    assert m["features"]["synthetic"]["encoder"] == "synthetic"
    assert m["features"]["synthetic"]["image_size"] == 32


def test_ids_and_names(data):
    assert [u.raw_id for u in data.users] == [f"U{u:05d}" for u in range(data.n_users)]
    assert all(u.name for u in data.users)
    # prompts such as B-5 identify the user by name alone: names must be distinct
    assert len({u.name for u in data.users}) == data.n_users
    assert sorted(it.raw_id for it in data.items) == [f"S{i:05d}" for i in range(data.n_items)]
    assert all(len(it.title.split()) == 3 for it in data.items)
    assert all({a.split(":")[0] for a in it.attributes} == {"brand", "category", "type"} for it in data.items)


def test_names_stay_distinct_beyond_the_name_combinations():
    from bench.data.synthetic_content import user_names

    names = user_names(5000, np.random.default_rng(0))
    assert len(set(names)) == 5000


def test_every_item_has_an_image_of_the_right_size(small, data):
    for i in range(data.n_items):
        with Image.open(data.image_path(i)) as im:
            assert im.size == (32, 32) and im.mode == "RGB"


def test_image_size_is_configurable(tmp_path):
    ds = generate(tmp_path, "big", n_users=10, n_items=130, image_size=48)
    png = next((ds / "images").iterdir()).read_bytes()
    assert Image.open(io.BytesIO(png)).size == (48, 48)


def test_features_shape_and_they_carry_the_hidden_style(small, data):
    f = data.features("synthetic")
    assert f.dtype == np.float32 and f.shape == (data.n_items, 64)
    # The stored rows, in stored item order, cluster by the hidden style: nearest style centroid
    # recovers it for (nearly) every item.
    raw = np.load(small / "small" / "features" / "synthetic.npy")
    style = build_world(SMALL["n_users"], SMALL["n_items"], 7).item_style
    centroids = np.stack([raw[style == k].mean(0) for k in range(len(STYLE_NAMES))])
    nearest = np.argmin(((raw[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (nearest == style).mean() > 0.95


def test_hidden_style_never_appears_in_text(data):
    text = " ".join(
        [it.title + " " + " ".join(it.attributes) for it in data.items]
        + [f"{r.feature} {r.explanation} {r.headline}" for r in data.reviews]
    ).lower()
    for name in STYLE_NAMES:
        assert name not in text, name


def test_sequences_have_no_repeats_and_enough_items(data):
    for s in data.sequences:
        assert len(s) >= 5 and len(set(s.tolist())) == len(s)


def test_reviews_in_all_splits_and_well_formed(data):
    assert {r.split for r in data.reviews} == {"train", "val", "test"}
    for r in data.reviews:
        assert r.rating in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert 6 <= len(r.explanation.split()) <= 14
        assert r.feature in r.explanation.split() and r.headline
    # reviews are about items the user interacted with
    assert all(r.item in set(data.sequences[r.user].tolist()) for r in data.reviews)


def test_loads_with_both_indexings(small):
    for indexing in ("random", "sequential"):
        d = load_dataset("small", small, indexing=indexing)
        assert d.indexing == indexing and "explanation" in d.tasks


def test_too_few_items_is_refused(tmp_path):
    from bench.errors import UsageError

    with pytest.raises(UsageError, match="--items 100: .* use --items 120 or more"):
        generate(tmp_path, n_users=5, n_items=100)
    with pytest.raises(UsageError, match="--users 0"):
        generate(tmp_path, n_users=0, n_items=200)
    assert not any(tmp_path.iterdir())


def _sparse_stats(d):
    lens = np.array([len(s) for s in d.sequences])
    pop = np.bincount(np.concatenate(d.sequences), minlength=d.n_items)
    return lens, np.sort(pop)[::-1]


def test_sparse_preset_is_shaped_like_clothing_at_a_small_scale(tmp_path):
    from bench.data.synthetic import PRESETS

    ds = generate(tmp_path, "sp", preset="sparse", n_users=3000, n_items=1750)
    d = load_dataset("sp", tmp_path)
    lens, pop = _sparse_stats(d)
    assert 6.5 < lens.mean() < 7.8 and lens.min() == 5  # ~7 items per user, as Clothing 5-core
    assert pop[: len(pop) // 100].sum() > 4 * 0.01 * pop.sum()  # the top 1% of items: > 4x their share
    assert d.tasks == ["sequential", "direct"] and d.feature_sets == ["synthetic"] and not (ds / "images").exists()
    assert d.manifest["provenance"]["preset"] == "sparse"
    assert all(len(set(s.tolist())) == len(s) for s in d.sequences)  # no item twice in a sequence
    assert PRESETS["sparse"]["n_users"] >= 20_000 and PRESETS["sparse"]["n_items"] >= 10_000
    again = generate(tmp_path / "again", "sp", preset="sparse", n_users=3000, n_items=1750)
    assert (again / "sequences.txt").read_bytes() == (ds / "sequences.txt").read_bytes()


@pytest.mark.slow
def test_the_full_sparse_preset_generates_in_well_under_a_minute(tmp_path):
    import time

    t0 = time.perf_counter()
    generate(tmp_path, "sparse", preset="sparse")
    assert time.perf_counter() - t0 < 30
    lens, _ = _sparse_stats(load_dataset("sparse", tmp_path))
    assert 6.5 < lens.mean() < 7.8
