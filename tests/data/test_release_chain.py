"""The VIP5/P5 release chain end to end, as a user with the release on disk runs it: a directory in
the release's layout (sequential data, datamaps, item attributes, explanation splits, per-item CLIP
vectors under features/<type>_features/<dataset>/<asin>.npy) imports, its visual features are taken
from the release, and VIP5 with image tokens, S3-Rec with item attributes and the explanation task
all train and write records from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_importers import N_ITEMS, asin, make_release

from bench.cli import main

pytestmark = pytest.mark.slow  # three short trainings in child processes (~1 minute on 2 cores)


def test_release_chain(tmp_path):
    release = make_release(tmp_path / "release", "datamaps", "attributes", "exp", "prefixes")
    vecs = np.random.default_rng(0).normal(size=(N_ITEMS, 512)).astype(np.float32)
    fdir = release / "features" / "vitb32_features" / "toy_release"
    fdir.mkdir(parents=True)
    for i in range(N_ITEMS):
        np.save(fdir / f"{asin(i + 1)}.npy", vecs[i])
    root, results = tmp_path / "data", tmp_path / "results"
    common = ["--dataset", "rel", "--data-root", str(root)]

    assert main(["data", "import", str(release), "--name", "rel", "--data-root", str(root)]) == 0
    assert main(["features", *common, "--from-vip5", str(release / "features")]) == 0
    manifest = json.loads((root / "rel" / "manifest.json").read_text())
    assert set(manifest["tasks"]) == {"sequential", "direct", "explanation"} and "vitb32" in manifest["features"]

    run = [*common, "--results-dir", str(results), "--device", "cpu", "--jobs", "1", "--seeds", "1", "--epochs", "1"]
    small = ("backbone_epochs=1", "vocab_size=300", "beams=10", "seq_samples_per_user=1", "direct_samples_per_user=1",
             "train_candidates=20")
    tiny_vip5 = [a for kv in small for a in ("--set", kv)]
    assert main(["run", "--task", "direct", "--models", "vip5", "--set", "image_tokens=2", *tiny_vip5, *run]) == 0
    assert main(["run", "--task", "sequential", "--models", "s3rec", "--set", "pretrain_epochs=1", *run]) == 0
    assert main(["run", "--task", "explanation", "--models", "nrt", *run]) == 0

    def record(task, model, name):
        return json.loads((results / "runs" / "rel" / task / model / name).read_text())

    vip5 = record("direct", "vip5", "seed1__B-5.json")
    assert vip5["config"]["image_tokens"] == 2 and vip5["visual_features"]["name"] == "vitb32"
    assert vip5["visual_features"]["weights"] == "VIP5 release (CLIP)"  # not an untrained image tower
    s3rec = record("sequential", "s3rec", "seed1.json")
    assert s3rec["config"]["pretrain_epochs"] == 1 and set(s3rec["metrics"]) >= {"hr@10", "ndcg@10"}
    nrt = record("explanation", "nrt", "seed1.json")
    assert "bleu-4" in nrt["metrics"] and nrt["per_query"]["n"] > 0
