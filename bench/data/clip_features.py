"""Feature extraction with a CLIP image tower (`open_clip_torch`) for `bench features`: find the
local weights, load the tower, run it over every item's image and store the feature set.

Nothing is downloaded: weights come only from a local file or directory (an open_clip
checkpoint, or OpenAI's original TorchScript ``.pt``), or the tower is randomly initialised
(``--random-init``, recorded as ``"weights": "random init"``). The stored vector is the image
tower's output (CLIP ``encode_image``, not L2-normalised), like the VIP5 release's.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np

from bench.data.feature_common import (
    ENCODERS,
    KEEP,
    check_missing_fraction,
    fill_missing,
    listing,
    now,
    stored_raw_ids,
)
from bench.errors import UsageError

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
# checkpoint names looked for, in this order, when --weights is a directory (open_clip's and
# Hugging Face's names; OpenAI's own file is `<model name>.pt`, e.g. ViT-B-32.pt)
CHECKPOINT_NAMES = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "open_clip_model.pt", "model.safetensors", "pytorch_model.bin",
)
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
RANDOM_INIT = "random init"
IMAGES_HINT = "wrong image directory? (choose it with --images DIR: <raw id>.jpg/.jpeg/.png)"


def resolve_weights(path: Path, model_name: str) -> Path:
    """A checkpoint file, or the one checkpoint found in a directory."""
    path = path.expanduser().resolve()
    if path.is_file():
        return path
    if not path.is_dir():
        raise UsageError(f"--weights {path}: no such file or directory")
    for name in (*CHECKPOINT_NAMES, f"{model_name}.pt"):
        if (path / name).is_file():
            return path / name
    found = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    if len(found) == 1:
        return path / found[0]
    what = f"several checkpoints ({', '.join(found)}); name the file" if found else "no checkpoint file"
    raise UsageError(f"--weights {path}: {what} (looked for {', '.join(CHECKPOINT_NAMES)}, {model_name}.pt)")


def _is_torchscript(path: Path) -> bool:
    """OpenAI's original CLIP .pt files are TorchScript archives (they hold `constants.pkl`)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") for n in z.namelist())


def load_encoder(encoder: str, weights: Path | None, *, quick_gelu: bool = False, seed: int = 0):
    """(image tower, preprocessing transform) for `encoder`, on CPU, in eval mode. With
    `weights=None` the tower is randomly initialised from `seed` (global RNG state untouched)."""
    import open_clip
    import torch

    name = ENCODERS[encoder][0]
    try:
        if weights is not None and _is_torchscript(weights):
            # OpenAI's own checkpoint: open_clip rebuilds the model (QuickGELU) from its state dict;
            # a file path is never looked up as a download tag
            model = open_clip.load_openai_model(str(weights), precision="fp32", device="cpu")
            preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
        else:
            # `pretrained` = an existing file path: open_clip loads it (strict) and downloads nothing
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name, pretrained=str(weights) if weights else None, force_quick_gelu=quick_gelu
                )
    except (RuntimeError, KeyError, ValueError) as e:
        raise UsageError(f"--weights {weights}: cannot load them into {name}: {e}") from None
    return model.visual.eval(), preprocess


def _load_image(path: Path, preprocess):
    from PIL import Image

    with Image.open(path) as img:
        return preprocess(img.convert("RGB"))  # [3, H, W]


def _image_paths(images_dir: Path, raw_ids: list[str]) -> list[Path | None]:
    """Each item's image file (the first of <raw id>.jpg/.jpeg/.png found), or None."""
    paths: list[Path | None] = []
    for rid in raw_ids:
        paths.append(next((images_dir / f"{rid}{ext}" for ext in IMAGE_EXTS
                           if (images_dir / f"{rid}{ext}").is_file()), None))
    return paths


def _encode_images(visual, preprocess, paths: list[Path | None], raw_ids: list[str], *, encoder: str,
                   weights: Path | None, batch_size: int, device: str):
    """-> rows [n, d] of the tower's outputs, a mask of the rows encoded, and the raw ids whose
    image could not be read."""
    import torch
    from PIL import Image

    from bench.progress import progress

    name, dim = ENCODERS[encoder]
    rows = np.zeros((len(raw_ids), dim), dtype=np.float32)
    have = np.zeros(len(raw_ids), dtype=bool)
    unreadable: list[str] = []
    todo = [k for k, p in enumerate(paths) if p is not None]
    batches = range(0, len(todo), batch_size)
    for b in progress(batches, total=len(batches), desc=f"{encoder} features"):
        ks, xs = [], []
        for k in todo[b : b + batch_size]:
            try:
                xs.append(_load_image(paths[k], preprocess))
                ks.append(k)
            except (OSError, ValueError, Image.DecompressionBombError):
                unreadable.append(raw_ids[k])  # a corrupt file is reported like a missing one
        if not ks:
            continue
        with torch.inference_mode():
            out = visual(torch.stack(xs).to(device))  # [b, d]
        if out.shape[1] != dim:
            raise UsageError(f"--weights {weights}: give {out.shape[1]}-d features, {name} gives {dim}-d; "
                             "wrong --encoder for these weights?")
        rows[ks] = out.float().cpu().numpy()
        have[ks] = True
    return rows, have, unreadable


def _extraction_meta(encoder: str, weights: Path | None, *, open_clip_version: str, quick_gelu: bool,
                     seed: int, size, images_dir: Path, device: str, seconds: float, missing: list[str],
                     unreadable: list[str]) -> dict:
    """The manifest entry of an extracted feature set: where it came from and which items lack one."""
    from bench.data.store import _sha256

    bad = missing + unreadable
    meta = {
        "encoder": encoder,
        "source": "open_clip",
        "open_clip_model": ENCODERS[encoder][0],
        "open_clip_version": open_clip_version,
        "weights": RANDOM_INIT if weights is None else _sha256(weights),
        "weights_file": None if weights is None else str(weights),
        "quick_gelu": bool(quick_gelu or (weights is not None and _is_torchscript(weights))),
        **({"random_init_seed": seed} if weights is None else {}),
        "image_size": size[0] if isinstance(size, (tuple, list)) and size[0] == size[1] else size,
        "output": "image tower output (CLIP encode_image), not L2-normalised",
        "images": str(images_dir),
        "date": now(),
        "device": device,
        "seconds": round(seconds, 2),
        "n_missing_images": len(bad),
        "missing_images": missing[:KEEP],
        "unreadable_images": unreadable[:KEEP],
        "n_mean_filled": len(bad),
    }
    if bad:
        meta["missing_filled_with"] = "mean of the other items' features"
    return meta


def _print_summary(data, encoder: str, weights: Path | None, meta: dict, n: int, seconds: float,
                   images_dir: Path, missing: list[str], unreadable: list[str]) -> None:
    name, dim = ENCODERS[encoder]
    bad = missing + unreadable
    print(f"{encoder} ({name}, weights: {meta['weights']}): {n} items, {dim}-d, {seconds:.1f} s "
          f"({(n - len(bad)) / max(seconds, 1e-9):.1f} images/s) -> {data.path / 'features' / encoder}.npy")
    if weights is None:
        print("  random init: untrained image tower; use these features for pipeline tests only")
    if missing:
        print(f"  {len(missing)} items have no image in {images_dir} ({listing(missing)})")
    if unreadable:
        print(f"  {len(unreadable)} images could not be read ({listing(unreadable)})")
    if bad:
        print(f"  their rows are the mean of the other {n - len(bad)} items' features")


def extract(data, encoder: str, weights: Path | None, *, images_dir: Path | None = None, batch_size: int = 64,
            device: str = "cpu", quick_gelu: bool = False, seed: int = 0,
            max_missing: float = 0.5) -> np.ndarray:
    """Run the image tower over every item's image and store the features; returns them [n_items, d]
    in stored item order."""
    import open_clip

    from bench.data.store import add_features

    images_dir = Path(images_dir or data.path / "images")
    raw_ids = stored_raw_ids(data)
    paths = _image_paths(images_dir, raw_ids)
    missing = [rid for rid, p in zip(raw_ids, paths, strict=True) if p is None]
    what = f"{images_dir} (item images)"
    check_missing_fraction(len(missing), len(raw_ids), max_missing, what, IMAGES_HINT)

    visual, preprocess = load_encoder(encoder, weights, quick_gelu=quick_gelu, seed=seed)
    visual = visual.to(device)
    start = time.perf_counter()  # images/s counts reading, preprocessing and the forward pass
    rows, have, unreadable = _encode_images(visual, preprocess, paths, raw_ids, encoder=encoder,
                                            weights=weights, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - start
    check_missing_fraction(len(missing) + len(unreadable), len(raw_ids), max_missing, what, IMAGES_HINT)
    rows = fill_missing(rows, have)

    meta = _extraction_meta(encoder, weights, open_clip_version=open_clip.__version__, quick_gelu=quick_gelu,
                            seed=seed, size=visual.image_size, images_dir=images_dir, device=device,
                            seconds=seconds, missing=missing, unreadable=unreadable)
    add_features(data.path, encoder, rows, raw_ids, meta)
    _print_summary(data, encoder, weights, meta, len(raw_ids), seconds, images_dir, missing, unreadable)
    return rows
