"""Import of the per-item visual vectors that the VIP5 release ships (``--from-vip5`` of `bench
features`): find the ``<type>_features/<dataset>/<asin>.npy`` directories, read and check the
vectors, and store them under the same feature-set names as extracted ones.
"""

from __future__ import annotations

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
from bench.errors import DataFormatError, UsageError


def _feature_types(src: Path, encoder: str | None) -> dict[str, Path]:
    """type -> its `<type>_features/` directory under `src` (or `src/features/`): the one asked
    for with --encoder, else every known type found."""
    base = src / "features" if (src / "features").is_dir() else src
    types = {p.name[: -len("_features")]: p for p in sorted(base.iterdir())
             if p.is_dir() and p.name.endswith("_features")}
    if not types:
        raise UsageError(f"--from-vip5 {src}: neither <asin>.npy files nor <type>_features/ directories")
    if encoder is not None:
        if encoder not in types:
            raise UsageError(f"--from-vip5 {src}: no {encoder}_features/ (found: {', '.join(types)})")
        return {encoder: types[encoder]}
    unknown = sorted(set(types) - set(ENCODERS))
    if unknown:
        print(f"ignoring {', '.join(t + '_features/' for t in unknown)}: not one of {', '.join(ENCODERS)}")
    return {t: p for t, p in types.items() if t in ENCODERS}


def _dataset_dir(tdir: Path, vip5_dataset: str | None, dataset: str) -> Path:
    """The directory of <asin>.npy files in `tdir`: the --vip5-dataset one, the only one, `tdir`
    itself, or the one named like the benchmark dataset."""
    subs = sorted(p.name for p in tdir.iterdir() if p.is_dir())
    if vip5_dataset is not None:
        if vip5_dataset not in subs:
            raise UsageError(f"--vip5-dataset {vip5_dataset}: no {tdir / vip5_dataset} "
                             f"(found: {', '.join(subs)})")
        return tdir / vip5_dataset
    if len(subs) == 1:
        return tdir / subs[0]
    if not subs and any(tdir.glob("*.npy")):
        return tdir
    if dataset.lower() in (s.lower() for s in subs):
        return tdir / next(s for s in subs if s.lower() == dataset.lower())
    raise UsageError(f"--from-vip5: {tdir} holds {', '.join(subs) or 'nothing'}; "
                     "choose one with --vip5-dataset NAME")


def vip5_sources(src: Path, encoder: str | None, vip5_dataset: str | None,
                 dataset: str) -> list[tuple[str, Path]]:
    """The (feature type, directory of <asin>.npy) pairs to import from `src`: either one directory of
    .npy files, or the release layout `[features/]<type>_features/<dataset>/`."""
    if not src.is_dir():
        raise UsageError(f"--from-vip5 {src}: not a directory")
    if any(src.glob("*.npy")):
        enc = encoder
        if enc is None and src.parent.name.endswith("_features"):
            enc = src.parent.name[: -len("_features")]
        if enc not in ENCODERS:
            raise UsageError(f"--from-vip5 {src} holds .npy files directly: say which type they are with "
                             f"--encoder ({', '.join(ENCODERS)})")
        return [(enc, src)]
    types = _feature_types(src, encoder)
    return [(t, _dataset_dir(tdir, vip5_dataset, dataset)) for t, tdir in types.items()]


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


def import_vip5(data, encoder: str, src: Path, *, allow_missing: bool = False,
                max_missing: float = 0.5) -> np.ndarray:
    """Import one feature type of the VIP5 release (`src/<asin>.npy`) into the dataset; returns the
    stored rows [n_items, d] in stored item order."""
    from bench.data.store import add_features

    dim = ENCODERS[encoder][1]
    raw_ids = stored_raw_ids(data)
    rows, have, missing, malformed = read_vip5_vectors(src, raw_ids, dim)
    n, n_bad = len(raw_ids), len(missing) + len(malformed)
    problems = []
    if missing:
        problems.append(f"  missing ({len(missing)}): {listing(missing)}")
    if malformed:
        named = listing([f"{r} ({why})" for r, why in malformed])
        problems.append(f"  malformed ({len(malformed)}): {named}")
    if n_bad and not allow_missing:
        raise DataFormatError(src, f"{n_bad} of {n} items lack a usable {encoder} vector ({dim}-d):\n"
                              + "\n".join(problems) + "\nfix the files, or pass --allow-missing to give "
                              "those items the mean of the other vectors (recorded in the manifest)")
    check_missing_fraction(n_bad, n, max_missing, f"{src} ({encoder} vectors)", "wrong dataset directory?")
    known = set(raw_ids)
    n_extra = sum(1 for p in src.glob("*.npy") if p.stem not in known)
    rows = fill_missing(rows, have)
    meta = {
        "encoder": encoder,
        "source": "VIP5 release",
        "weights": "VIP5 release (CLIP)",
        "from": str(src.resolve()),
        "date": now(),
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
        print("\n".join(problems)
              + f"\n  those {n_bad} items get the mean of the other vectors (--allow-missing)")
    if n_extra:
        print(f"  {n_extra} files in {src} are for items not in the dataset (ignored)")
    return rows
