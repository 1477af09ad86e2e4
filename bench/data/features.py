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

This module is the command and its arguments; extraction lives in `bench.data.clip_features`,
the import in `bench.data.vip5_features`, what both share in `bench.data.feature_common`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.data.clip_features import extract, resolve_weights
from bench.data.feature_common import ENCODERS
from bench.data.vip5_features import import_vip5, vip5_sources
from bench.errors import UsageError


def encoder_name(s: str) -> str:
    """'ViT-B-32', 'ViT-B/32', 'vitb32' -> 'vitb32' (argparse `type`)."""
    short = s.lower().replace("-", "").replace("/", "").replace("_", "")
    if short not in ENCODERS:
        known = ", ".join(f"{name} ({k})" for k, (name, _) in ENCODERS.items())
        raise argparse.ArgumentTypeError(f"unknown encoder {s!r}; known encoders: {known}")
    return short


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
                   help="RN50, RN101, ViT-B-32, ViT-B-16 or ViT-L-14 (or rn50 ... vitl14); "
                   "required to extract; with --from-vip5: which type to import (default: every type found)")
    ext = p.add_argument_group("extraction")
    ext.add_argument("--weights", default=None, metavar="PATH",
                     help="local open_clip checkpoint file (.safetensors/.bin/.pt/.pth) "
                     "or a directory holding one, or OpenAI's original <model>.pt; nothing is downloaded")
    ext.add_argument("--random-init", action="store_true",
                     help="no weights: untrained image tower "
                     "(pipeline tests only; recorded as 'random init')")
    ext.add_argument("--quick-gelu", action="store_true",
                     help="QuickGELU activations, needed for OpenAI-trained weights saved in open_clip "
                     "format (OpenAI's own .pt files are detected and need no flag)")
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
                     help="import even when some items' vectors are missing or malformed: "
                     "they get the mean vector")
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
            f"--encoder {ENCODERS[args.encoder][0]} needs local weights: --weights PATH "
            "(an open_clip checkpoint file or a directory holding one, e.g. open_clip_pytorch_model.bin, "
            "or OpenAI's ViT-B-32.pt); nothing is downloaded. For a pipeline test without weights "
            "pass --random-init (results are marked 'random init')."
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
