"""What both routes of `bench features` share (`bench.data.clip_features` extracts with a CLIP
image tower, `bench.data.vip5_features` imports the VIP5 release's vectors): the encoder names,
the stored item order, and how items without a usable vector are filled and reported.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from bench.errors import DataFormatError

# short name (feature-set name, VIP5's `<type>_features`) -> (open_clip model name, feature dim)
ENCODERS = {
    "rn50": ("RN50", 1024),
    "rn101": ("RN101", 512),
    "vitb32": ("ViT-B-32", 512),
    "vitb16": ("ViT-B-16", 512),
    "vitl14": ("ViT-L-14", 768),
}
SHOW = 10  # offending item ids named in a message
KEEP = 100  # offending item ids kept in the manifest


def stored_raw_ids(data) -> list[str]:
    """Raw ids in the dataset's stored row order (what `add_features` expects), whatever the
    item indexing the loaded view applies."""
    return [data.items[j].raw_id for j in data.perm]


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def fill_missing(rows: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Rows without a vector (`~have`) get the mean of the others."""
    rows = rows.astype(np.float32)
    rows[~have] = rows[have].mean(axis=0)
    return rows


def check_missing_fraction(n_bad: int, n: int, max_missing: float, what: str, hint: str) -> None:
    if n_bad == n or n_bad > max_missing * n:
        raise DataFormatError(
            what, f"{n_bad} of {n} items have none (more than --max-missing {max_missing:g}); {hint}")


def listing(ids: list[str]) -> str:
    more = f", ... ({len(ids) - SHOW} more)" if len(ids) > SHOW else ""
    return ", ".join(ids[:SHOW]) + more
