"""`bench features`: open_clip extraction (random init, local weights, no network) and the VIP5 import."""

from __future__ import annotations

import argparse
import io
import json
import socket

import numpy as np
import pytest

from bench.data import Item, User, load_dataset, write_dataset
from bench.data.clip_features import resolve_weights
from bench.data.features import add_parser, cmd_features, encoder_name
from bench.errors import DataFormatError, UsageError

N_ITEMS = 110  # the direct task's 100 candidates need >= 100 + sequence length items


def run(*argv: str) -> int:
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers(dest="cmd"))
    return cmd_features(ap.parse_args(["features", *argv]))


def png(colour: tuple[int, int, int], size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.new("RGB", (size, size), colour)
    img.putpixel((0, 0), (255 - colour[0], 0, 0))
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def toy(tmp_path):
    """A 110-item dataset with images for items 0-7 only: items 0 and 5 share an image, item 7's is corrupt."""
    items = [Item(raw_id=f"I{i:04d}", title=f"item {i}") for i in range(N_ITEMS)]
    users = [User(raw_id=f"U{u}") for u in range(4)]
    seqs = [[3 * u, 3 * u + 1, 3 * u + 2] for u in range(4)]
    images = {i: png((30 * i, 100, 200 - 20 * i)) for i in range(7)}
    images[5] = images[0]
    images[7] = b"not a png"
    write_dataset(tmp_path / "data", "toy", users=users, items=items, sequences=seqs, images=images)
    return tmp_path / "data"


def stored(root, enc="vitb32"):
    ds = root / "toy"
    rows = np.load(ds / "features" / f"{enc}.npy")
    order = (ds / "features" / f"{enc}.items.txt").read_text().split()
    meta = json.loads((ds / "manifest.json").read_text())["features"][enc]
    return rows, order, meta


def raw_ids_in_file(root) -> list[str]:
    return [json.loads(line)["raw_id"] for line in (root / "toy" / "items.jsonl").read_text().splitlines()]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ----------------------------------------------------------------------------------------- extraction


def test_extract_random_init(toy, no_network, capsys):
    pytest.importorskip("open_clip")
    assert run("--dataset", "toy", "--data-root", str(toy), "--encoder", "ViT-B-32", "--random-init",
               "--batch-size", "3", "--device", "cpu", "--max-missing", "0.99") == 0
    rows, order, meta = stored(toy)
    assert rows.shape == (N_ITEMS, 512) and rows.dtype == np.float32
    assert order == raw_ids_in_file(toy)
    # same image -> same row, different images -> different rows (rows follow the item order)
    np.testing.assert_allclose(rows[0], rows[5], atol=1e-5)
    assert not np.allclose(rows[0], rows[1], atol=1e-3)
    # 102 items without an image and 1 corrupt image: all get the mean of the 7 encoded rows
    np.testing.assert_allclose(rows[7:], np.broadcast_to(rows[:7].mean(0), (N_ITEMS - 7, 512)), atol=1e-5)
    assert meta["weights"] == "random init" and meta["encoder"] == "vitb32" and meta["dim"] == 512
    assert meta["image_size"] == 224 and meta["date"] and meta["open_clip_model"] == "ViT-B-32"
    assert meta["n_missing_images"] == N_ITEMS - 7 and meta["unreadable_images"] == ["I0007"]
    assert meta["missing_images"][:2] == ["I0008", "I0009"]
    out = capsys.readouterr().out
    assert "102 items have no image" in out and "I0008" in out and "could not be read (I0007)" in out
    assert "mean of the other 7" in out and "random init" in out
    # the loaded view returns the same vectors under its own item numbering
    data = load_dataset("toy", toy)
    j = next(j for j, it in enumerate(data.items) if it.raw_id == "I0001")
    np.testing.assert_array_equal(data.features("vitb32")[j], rows[1])
    # a run on these features records their provenance, and its table row is marked
    from bench.report.run_table import comparison_table
    from bench.run.worker import visual_features_used
    from models.vip5 import P5Config, VIP5Config

    used = visual_features_used(VIP5Config(visual_encoder="vitb32"), data)
    assert used["name"] == "vitb32" and used["weights"] == "random init" and used["dim"] == 512
    assert visual_features_used(P5Config(), data) is None  # text-only prompts read no features
    rec = {"model": "vip5", "task": "direct", "metrics": {"hr@5": 0.5}, "time_per_epoch_s": 1.0, "epochs": 1,
           "trainable_params": 10, "peak_memory_mb": 1.0, "visual_features": used}
    assert "(random-init features)" in comparison_table([rec], "direct")


@pytest.mark.slow  # builds ViT-B-32 twice and writes a 300 MB checkpoint: ~7 s on an idle 2-core CPU
def test_extract_from_a_local_checkpoint_matches_the_model(toy, tmp_path, no_network):
    open_clip = pytest.importorskip("open_clip")
    import torch

    torch.manual_seed(7)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
    # half precision keeps the file small; loading casts it back into the fp32 model
    weights = tmp_path / "clip"
    weights.mkdir()
    torch.save({k: v.half() for k, v in model.state_dict().items()}, weights / "open_clip_pytorch_model.bin")
    assert run("--dataset", "toy", "--data-root", str(toy), "--encoder", "vitb32", "--weights", str(weights),
               "--device", "cpu", "--max-missing", "0.99") == 0
    rows, _, meta = stored(toy)
    from PIL import Image

    model.load_state_dict({k: v.float() for k, v in torch.load(weights / "open_clip_pytorch_model.bin").items()})
    with Image.open(toy / "toy" / "images" / "I0002.png") as img, torch.inference_mode():
        expect = model.eval().encode_image(preprocess(img.convert("RGB"))[None])[0].numpy()
    np.testing.assert_allclose(rows[2], expect, rtol=1e-4, atol=1e-4)
    from bench.data.store import _sha256

    assert meta["weights"] == _sha256(weights / "open_clip_pytorch_model.bin")


@pytest.mark.parametrize("argv,needle", [
    (["--encoder", "RN50"], "needs local weights.*--random-init"),
    (["--encoder", "RN50", "--random-init", "--weights", "w.pt"], "exclude each other"),
    (["--encoder", "RN50", "--random-init", "--images", "no/such/dir"], "--images no/such/dir: not a directory"),
    (["--random-init"], "choose the image tower with --encoder"),
    (["--from-vip5", "x", "--random-init"], "--random-init: extraction options, not used with --from-vip5"),
])
def test_bad_options_fail_before_any_data_loads(argv, needle, tmp_path):
    with pytest.raises(UsageError, match=needle):
        run("--dataset", "toy", "--data-root", str(tmp_path / "nothing"), *argv)
    assert not (tmp_path / "nothing").exists()


def test_too_many_missing_images_fail_before_the_model_loads(toy, monkeypatch):
    monkeypatch.setattr("bench.data.clip_features.load_encoder", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(DataFormatError, match="102 of 110 items have none"):
        run("--dataset", "toy", "--data-root", str(toy), "--encoder", "vitb32", "--random-init")


@pytest.mark.parametrize("given,short", [("ViT-B-32", "vitb32"), ("ViT-B/16", "vitb16"), ("vitl14", "vitl14"),
                                         ("RN50", "rn50"), ("rn101", "rn101")])
def test_encoder_names(given, short):
    assert encoder_name(given) == short


def test_unknown_encoder_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        run("--dataset", "toy", "--encoder", "ViT-H-14", "--random-init")
    assert e.value.code == 2 and "unknown encoder 'ViT-H-14'" in capsys.readouterr().err


def test_weights_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(UsageError, match="no checkpoint file"):
        resolve_weights(tmp_path, "RN50")
    (tmp_path / "a.pt").write_bytes(b"")
    (tmp_path / "b.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="several checkpoints"):
        resolve_weights(tmp_path, "RN50")
    (tmp_path / "RN50.pt").write_bytes(b"")
    assert resolve_weights(tmp_path, "RN50") == tmp_path / "RN50.pt"
    (tmp_path / "open_clip_pytorch_model.bin").write_bytes(b"")
    assert resolve_weights(tmp_path, "RN50").name == "open_clip_pytorch_model.bin"


# ----------------------------------------------------------------------------------------- VIP5 import


@pytest.fixture
def release(tmp_path):
    """The release layout for the toy items: I0001 has no file, I0002's vector is 300-d, I0003's is [1, 512]."""
    src = tmp_path / "vip5" / "features" / "vitb32_features" / "toy"
    src.mkdir(parents=True)
    vecs = np.random.default_rng(0).normal(size=(N_ITEMS, 512)).astype(np.float32)
    for i in range(N_ITEMS):
        if i == 1:
            continue
        v = vecs[i, :300] if i == 2 else vecs[i][None] if i == 3 else vecs[i]
        np.save(src / f"I{i:04d}.npy", v)
    np.save(src / "B00NOTHERE.npy", vecs[0])  # an item the dataset does not have
    return tmp_path / "vip5", vecs


def test_vip5_import_lists_missing_and_malformed(toy, release):
    with pytest.raises(DataFormatError) as e:
        run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(release[0]))
    msg = str(e.value)
    assert "2 of 110 items lack a usable vitb32 vector" in msg
    assert "missing (1): I0001" in msg and "malformed (1): I0002 (300-d, expected 512-d)" in msg
    assert "--allow-missing" in msg
    assert not (toy / "toy" / "features" / "vitb32.npy").exists()


def test_vip5_import_with_allow_missing(toy, release, capsys):
    src, vecs = release
    assert run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(src), "--allow-missing") == 0
    rows, order, meta = stored(toy)
    assert rows.shape == (N_ITEMS, 512) and rows.dtype == np.float32 and order == raw_ids_in_file(toy)
    ok = np.setdiff1d(np.arange(N_ITEMS), [1, 2])
    np.testing.assert_array_equal(rows[ok], vecs[ok])
    np.testing.assert_allclose(rows[1], vecs[ok].mean(0), atol=1e-6)
    np.testing.assert_array_equal(rows[2], rows[1])
    assert meta["missing"] == ["I0001"] and meta["malformed"][0]["item"] == "I0002"
    assert meta["n_mean_filled"] == 2 and meta["files_for_other_items"] == 1 and meta["source"] == "VIP5 release"
    out = capsys.readouterr().out
    assert "imported 108 of 110" in out and "I0001" in out and "I0002" in out


def test_vip5_import_of_a_plain_directory_needs_the_type(toy, release):
    src, vecs = release
    flat = src / "features" / "vitb32_features" / "toy"
    # the type is read from the parent directory's name when it is <type>_features ...
    assert run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(flat), "--allow-missing") == 0
    # ... and must be given otherwise
    other = flat.rename(src / "vectors")
    with pytest.raises(UsageError, match="--encoder"):
        run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(other))
    assert run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(other), "--encoder", "ViT-B-32",
               "--allow-missing") == 0


def test_vip5_import_asks_which_dataset(toy, release):
    src, _ = release
    (src / "features" / "vitb32_features" / "beauty").mkdir()
    (src / "features" / "vitb32_features" / "toy").rename(src / "features" / "vitb32_features" / "sports")
    with pytest.raises(UsageError, match="beauty, sports; choose one with --vip5-dataset"):
        run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(src))
    assert run("--dataset", "toy", "--data-root", str(toy), "--from-vip5", str(src), "--vip5-dataset", "sports",
               "--allow-missing") == 0
