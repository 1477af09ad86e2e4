"""Item visual features: extract them with a CLIP image tower (`open_clip_torch`), or import the
per-item vectors that the VIP5 release ships.

Both routes store one feature set per encoder in the dataset (`bench.data.store.add_features`:
``features/<name>.npy``, its item order and a manifest entry), under the short names the VIP5
release uses -- ``rn50``, ``rn101``, ``vitb32``, ``vitb16``, ``vitl14`` -- so extracted and imported
features are interchangeable and a model picks one with ``--set visual_encoder=vitb32``.

    python -m bench features --dataset D --encoder ViT-B-32 --weights PATH   # extract
    python -m bench features --dataset D --from-vip5 DIR [--encoder vitb32]  # import

Extraction never downloads anything: weights come only from a local file or directory
(an open_clip checkpoint, or OpenAI's original TorchScript ``.pt``). ``--random-init`` extracts
with untrained weights, for pipeline tests; the manifest then says ``"weights": "random init"``.

The stored vector is the image tower's output (CLIP ``encode_image``, not L2-normalised): the
same pooled, projected vector and dimension as the VIP5 release (the paper, Sec. 4.1: "we extract
the image features in advance with CLIP visual encoders"; no extraction script was published).

Items without a usable image (or vector) get the mean of the other items' vectors, and the
manifest lists them; more than ``--max-missing`` of them is an error (a wrong directory, most
likely). Importing fails on any missing or malformed vector unless ``--allow-missing``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
import zipfile
from pathlib import Path

import numpy as np

from bench.errors import DataFormatError, UsageError

# short name (feature-set name, VIP5's `<type>_features`) -> (open_clip model name, feature dim)
ENCODERS = {
    "rn50": ("RN50", 1024),
    "rn101": ("RN101", 512),
    "vitb32": ("ViT-B-32", 512),
    "vitb16": ("ViT-B-16", 512),
    "vitl14": ("ViT-L-14", 768),
}
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
# checkpoint names looked for, in this order, when --weights is a directory (open_clip's and
# Hugging Face's names; OpenAI's own file is `<model name>.pt`, e.g. ViT-B-32.pt)
CHECKPOINT_NAMES = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "open_clip_model.pt", "model.safetensors", "pytorch_model.bin",
)
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
SHOW = 10  # offending item ids named in a message
KEEP = 100  # offending item ids kept in the manifest
RANDOM_INIT = "random init"


def encoder_name(s: str) -> str:
    """'ViT-B-32', 'ViT-B/32', 'vitb32' -> 'vitb32' (argparse `type`)."""
    short = s.lower().replace("-", "").replace("/", "").replace("_", "")
    if short not in ENCODERS:
        known = ", ".join(f"{name} ({k})" for k, (name, _) in ENCODERS.items())
        raise argparse.ArgumentTypeError(f"unknown encoder {s!r}; known encoders: {known}")
    return short


# ----------------------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "features",
        help="extract item visual features with open_clip, or import the VIP5 release's features",
        description="Extract: --encoder E --weights PATH (or --random-init). Import: --from-vip5 DIR. "
        "Features are stored in the dataset as features/<rn50|rn101|vitb32|vitb16|vitl14>.npy; "
        "models choose them with --set visual_encoder=NAME.",
    )
    p.add_argument("--dataset", required=True, help="dataset name")
    p.add_argument("--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data)")
    p.add_argument("--encoder", type=encoder_name, default=None,
                   help="RN50, RN101, ViT-B-32, ViT-B-16 or ViT-L-14 (or rn50 ... vitl14); required to extract; "
                   "with --from-vip5: which type to import (default: every type found)")
    ext = p.add_argument_group("extraction")
    ext.add_argument("--weights", default=None, metavar="PATH",
                     help="local open_clip checkpoint file (.safetensors/.bin/.pt/.pth) or a directory holding one, "
                     "or OpenAI's original <model>.pt; nothing is downloaded")
    ext.add_argument("--random-init", action="store_true",
                     help="no weights: untrained image tower (pipeline tests only; recorded as 'random init')")
    ext.add_argument("--quick-gelu", action="store_true",
                     help="QuickGELU activations, needed for OpenAI-trained weights saved in open_clip format "
                     "(OpenAI's own .pt files are detected and need no flag)")
    ext.add_argument("--images", default=None, metavar="DIR",
                     help="image directory with <raw id>.jpg/.jpeg/.png (default: the dataset's images/)")
    ext.add_argument("--batch-size", type=int, default=64)
    ext.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    ext.add_argument("--seed", type=int, default=0, help="seed of the --random-init weights")
    imp = p.add_argument_group("import of the VIP5 release")
    imp.add_argument("--from-vip5", default=None, metavar="DIR",
                     help="the release's features/ directory (with <type>_features/<dataset>/<asin>.npy), "
                     "or one directory of <asin>.npy files")
    imp.add_argument("--vip5-dataset", default=None, metavar="NAME",
                     help="which <type>_features/<NAME>/ to read when there are several (e.g. beauty)")
    imp.add_argument("--allow-missing", action="store_true",
                     help="import even when some items' vectors are missing or malformed: they get the mean vector")
    p.add_argument("--max-missing", type=float, default=0.5, metavar="FRACTION",
                   help="fail when more than this fraction of items has no image/vector (default: 0.5)")
    return p


def cmd_features(args) -> int:
    from bench.data import check_dataset_name, load_dataset

    # every argument check comes before any data loads
    if not 0.0 <= args.max_missing <= 1.0:
        raise UsageError(f"--max-missing {args.max_missing}: expected a fraction in [0, 1]")
    if args.from_vip5 is not None:
        given = [o for o, v in (("--weights", args.weights), ("--random-init", args.random_init),
                                ("--images", args.images), ("--quick-gelu", args.quick_gelu)) if v]
        if given:
            raise UsageError(f"{', '.join(given)}: extraction options, not used with --from-vip5")
        check_dataset_name(args.dataset, args.data_root)
        sources = vip5_sources(Path(args.from_vip5), args.encoder, args.vip5_dataset, args.dataset)
        data = load_dataset(args.dataset, args.data_root)
        for enc, src in sources:
            import_vip5(data, enc, src, allow_missing=args.allow_missing, max_missing=args.max_missing)
        return 0

    if args.encoder is None:
        raise UsageError("choose the image tower with --encoder (RN50, RN101, ViT-B-32, ViT-B-16, ViT-L-14), "
                         "or import released features with --from-vip5 DIR")
    if args.weights is None and not args.random_init:
        raise UsageError(
            f"--encoder {ENCODERS[args.encoder][0]} needs local weights: --weights PATH (an open_clip checkpoint file "
            "or a directory holding one, e.g. open_clip_pytorch_model.bin, or OpenAI's ViT-B-32.pt); nothing is "
            "downloaded. For a pipeline test without weights pass --random-init (results are marked 'random init')."
        )
    if args.weights is not None and args.random_init:
        raise UsageError("--weights and --random-init exclude each other")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: must be positive")
    if args.images is not None and not Path(args.images).is_dir():
        raise UsageError(f"--images {args.images}: not a directory")
    weights = resolve_weights(Path(args.weights), ENCODERS[args.encoder][0]) if args.weights else None
    from bench.train import resolve_device

    device = resolve_device(args.device)
    check_dataset_name(args.dataset, args.data_root)
    data = load_dataset(args.dataset, args.data_root)
    extract(data, args.encoder, weights, images_dir=Path(args.images) if args.images else None,
            batch_size=args.batch_size, device=device, quick_gelu=args.quick_gelu, seed=args.seed,
            max_missing=args.max_missing)
    return 0


# ----------------------------------------------------------------------------------------- helpers


def stored_raw_ids(data) -> list[str]:
    """Raw ids in the dataset's stored row order (what `add_features` expects), whatever the
    item indexing the loaded view applies."""
    return [data.items[j].raw_id for j in data.perm]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _fill_missing(rows: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Rows without a vector (`~have`) get the mean of the others."""
    rows = rows.astype(np.float32)
    rows[~have] = rows[have].mean(axis=0)
    return rows


def _check_missing_fraction(n_bad: int, n: int, max_missing: float, what: str, hint: str) -> None:
    if n_bad == n or n_bad > max_missing * n:
        raise DataFormatError(what, f"{n_bad} of {n} items have none (more than --max-missing {max_missing:g}); {hint}")


def _listing(ids: list[str]) -> str:
    more = f", ... ({len(ids) - SHOW} more)" if len(ids) > SHOW else ""
    return ", ".join(ids[:SHOW]) + more


# ----------------------------------------------------------------------------------------- extraction


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


def extract(data, encoder: str, weights: Path | None, *, images_dir: Path | None = None, batch_size: int = 64,
            device: str = "cpu", quick_gelu: bool = False, seed: int = 0, max_missing: float = 0.5) -> np.ndarray:
    """Run the image tower over every item's image and store the features; returns them [n_items, d]
    in stored item order."""
    import open_clip
    import torch
    from PIL import Image

    from bench.data.store import _sha256, add_features
    from bench.train import progress

    name, dim = ENCODERS[encoder]
    images_dir = Path(images_dir or data.path / "images")
    raw_ids = stored_raw_ids(data)
    paths: list[Path | None] = []
    for rid in raw_ids:
        paths.append(next((images_dir / f"{rid}{ext}" for ext in IMAGE_EXTS if (images_dir / f"{rid}{ext}").is_file()),
                          None))
    missing = [rid for rid, p in zip(raw_ids, paths, strict=True) if p is None]
    hint = "wrong image directory? (choose it with --images DIR: <raw id>.jpg/.jpeg/.png)"
    _check_missing_fraction(len(missing), len(raw_ids), max_missing, f"{images_dir} (item images)", hint)

    visual, preprocess = load_encoder(encoder, weights, quick_gelu=quick_gelu, seed=seed)
    visual = visual.to(device)
    start = time.perf_counter()  # images/s counts reading, preprocessing and the forward pass
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
    seconds = time.perf_counter() - start
    bad = missing + unreadable
    _check_missing_fraction(len(bad), len(raw_ids), max_missing, f"{images_dir} (item images)", hint)
    rows = _fill_missing(rows, have)

    size = visual.image_size
    meta = {
        "encoder": encoder,
        "source": "open_clip",
        "open_clip_model": name,
        "open_clip_version": open_clip.__version__,
        "weights": RANDOM_INIT if weights is None else _sha256(weights),
        "weights_file": None if weights is None else str(weights),
        "quick_gelu": bool(quick_gelu or (weights is not None and _is_torchscript(weights))),
        **({"random_init_seed": seed} if weights is None else {}),
        "image_size": size[0] if isinstance(size, (tuple, list)) and size[0] == size[1] else size,
        "output": "image tower output (CLIP encode_image), not L2-normalised",
        "images": str(images_dir),
        "date": _now(),
        "device": device,
        "seconds": round(seconds, 2),
        "n_missing_images": len(bad),
        "missing_images": missing[:KEEP],
        "unreadable_images": unreadable[:KEEP],
        "n_mean_filled": len(bad),
    }
    if bad:
        meta["missing_filled_with"] = "mean of the other items' features"
    add_features(data.path, encoder, rows, raw_ids, meta)

    n = len(raw_ids)
    print(f"{encoder} ({name}, weights: {meta['weights']}): {n} items, {dim}-d, {seconds:.1f} s "
          f"({(n - len(bad)) / max(seconds, 1e-9):.1f} images/s) -> {data.path / 'features' / encoder}.npy")
    if weights is None:
        print("  random init: untrained image tower; use these features for pipeline tests only")
    if missing:
        print(f"  {len(missing)} items have no image in {images_dir} ({_listing(missing)})")
    if unreadable:
        print(f"  {len(unreadable)} images could not be read ({_listing(unreadable)})")
    if bad:
        print(f"  their rows are the mean of the other {n - len(bad)} items' features")
    return rows


# ----------------------------------------------------------------------------------------- VIP5 import


def vip5_sources(src: Path, encoder: str | None, vip5_dataset: str | None, dataset: str) -> list[tuple[str, Path]]:
    """The (feature type, directory of <asin>.npy) pairs to import from `src`: either one directory of
    .npy files, or the release layout `[features/]<type>_features/<dataset>/`."""
    if not src.is_dir():
        raise UsageError(f"--from-vip5 {src}: not a directory")
    if any(src.glob("*.npy")):
        enc = encoder
        if enc is None and src.parent.name.endswith("_features"):
            enc = src.parent.name[: -len("_features")]
        if enc not in ENCODERS:
            raise UsageError(f"--from-vip5 {src} holds .npy files directly: say which type they are with --encoder "
                             f"({', '.join(ENCODERS)})")
        return [(enc, src)]
    base = src / "features" if (src / "features").is_dir() else src
    types = {p.name[: -len("_features")]: p for p in sorted(base.iterdir()) if p.is_dir() and p.name.endswith("_features")}
    if not types:
        raise UsageError(f"--from-vip5 {src}: neither <asin>.npy files nor <type>_features/ directories")
    if encoder is not None:
        if encoder not in types:
            raise UsageError(f"--from-vip5 {src}: no {encoder}_features/ (found: {', '.join(types)})")
        types = {encoder: types[encoder]}
    else:
        unknown = sorted(set(types) - set(ENCODERS))
        if unknown:
            print(f"ignoring {', '.join(t + '_features/' for t in unknown)}: not one of {', '.join(ENCODERS)}")
        types = {t: p for t, p in types.items() if t in ENCODERS}
    out = []
    for t, tdir in types.items():
        subs = sorted(p.name for p in tdir.iterdir() if p.is_dir())
        if vip5_dataset is not None:
            if vip5_dataset not in subs:
                raise UsageError(f"--vip5-dataset {vip5_dataset}: no {tdir / vip5_dataset} (found: {', '.join(subs)})")
            out.append((t, tdir / vip5_dataset))
        elif len(subs) == 1:
            out.append((t, tdir / subs[0]))
        elif not subs and any(tdir.glob("*.npy")):
            out.append((t, tdir))
        elif dataset.lower() in (s.lower() for s in subs):
            out.append((t, tdir / next(s for s in subs if s.lower() == dataset.lower())))
        else:
            raise UsageError(f"--from-vip5: {tdir} holds {', '.join(subs) or 'nothing'}; "
                             "choose one with --vip5-dataset NAME")
    return out


def read_vip5_vectors(src: Path, raw_ids: list[str], dim: int):
    """Rows [n, dim] from `src/<raw id>.npy` (a [dim] or [1, dim] array each), a mask of the rows
    read, and the raw ids whose file is missing, and (raw id, problem) for malformed files."""
    rows = np.zeros((len(raw_ids), dim), dtype=np.float32)
    have = np.zeros(len(raw_ids), dtype=bool)
    missing: list[str] = []
    malformed: list[tuple[str, str]] = []
    for k, rid in enumerate(raw_ids):
        path = src / f"{rid}.npy"
        if not path.is_file():
            missing.append(rid)
            continue
        try:
            v = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            malformed.append((rid, f"unreadable ({e})"))
            continue
        if v.ndim == 2 and v.shape[0] == 1:
            v = v[0]
        if v.ndim != 1:
            malformed.append((rid, f"shape {list(v.shape)}, expected [{dim}] or [1, {dim}]"))
        elif v.shape[0] != dim:
            malformed.append((rid, f"{v.shape[0]}-d, expected {dim}-d"))
        elif not np.issubdtype(v.dtype, np.number):
            malformed.append((rid, f"dtype {v.dtype}"))
        elif not np.isfinite(v).all():
            malformed.append((rid, "contains NaN or inf"))
        else:
            rows[k], have[k] = v, True
    return rows, have, missing, malformed


def import_vip5(data, encoder: str, src: Path, *, allow_missing: bool = False, max_missing: float = 0.5) -> np.ndarray:
    """Import one feature type of the VIP5 release (`src/<asin>.npy`) into the dataset; returns the
    stored rows [n_items, d] in stored item order."""
    from bench.data.store import add_features

    dim = ENCODERS[encoder][1]
    raw_ids = stored_raw_ids(data)
    rows, have, missing, malformed = read_vip5_vectors(src, raw_ids, dim)
    n, n_bad = len(raw_ids), len(missing) + len(malformed)
    problems = []
    if missing:
        problems.append(f"  missing ({len(missing)}): {_listing(missing)}")
    if malformed:
        problems.append(f"  malformed ({len(malformed)}): {_listing([f'{r} ({why})' for r, why in malformed])}")
    if n_bad and not allow_missing:
        raise DataFormatError(src, f"{n_bad} of {n} items lack a usable {encoder} vector ({dim}-d):\n"
                              + "\n".join(problems) + "\nfix the files, or pass --allow-missing to give those "
                              "items the mean of the other vectors (recorded in the manifest)")
    _check_missing_fraction(n_bad, n, max_missing, f"{src} ({encoder} vectors)", "wrong dataset directory?")
    known = set(raw_ids)
    n_extra = sum(1 for p in src.glob("*.npy") if p.stem not in known)
    rows = _fill_missing(rows, have)
    meta = {
        "encoder": encoder,
        "source": "VIP5 release",
        "weights": "VIP5 release (CLIP)",
        "from": str(src.resolve()),
        "date": _now(),
        "n_missing": len(missing),
        "missing": missing[:KEEP],
        "n_malformed": len(malformed),
        "malformed": [{"item": r, "problem": why} for r, why in malformed[:KEEP]],
        "n_mean_filled": n_bad,
        "files_for_other_items": n_extra,
    }
    if n_bad:
        meta["missing_filled_with"] = "mean of the other items' vectors (--allow-missing)"
    add_features(data.path, encoder, rows, raw_ids, meta)
    print(f"{encoder}: imported {n - n_bad} of {n} item vectors ({dim}-d) from {src} -> "
          f"{data.path / 'features' / encoder}.npy")
    if n_bad:
        print("\n".join(problems) + f"\n  those {n_bad} items get the mean of the other vectors (--allow-missing)")
    if n_extra:
        print(f"  {n_extra} files in {src} are for items not in the dataset (ignored)")
    return rows
