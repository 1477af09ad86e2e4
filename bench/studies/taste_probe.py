"""The hidden-taste probe of `bench diagnose` (datasets written by the synthetic generator only).

The generator knows what drives every choice (bench/data/synthetic_world.py): each user's
preferred visual style, each item's style and genre. A model that learned users' preferences
holds them in its learned id vectors, so a linear classifier reads them back from there. The
probe fits one (ridge, one-vs-rest, 5-fold cross-validation) on the user vectors to predict each
user's style, and on the item vectors to predict each item's style and genre, and reports the
held-out accuracy beside chance (the most common class). A truncated SVD of the training
interactions is the reference: what co-occurrence alone makes readable.

Why: P5's direct rows sit at popularity, and the probe says where it stops — on `synthetic`
the co-occurrence vectors read user and item style at ~0.9; P5's item embeddings read item style
at ~0.67 but its user embeddings read user style near chance (results/diagnose/).
"""

from __future__ import annotations

import numpy as np

PROBED = (("users", "user_style", "user style"), ("items", "item_style", "item style"),
          ("items", "item_genre", "item genre"))
FOLDS = 5


def probe_accuracy(x: np.ndarray, y: np.ndarray, ridge: float = 10.0, folds: int = FOLDS, seed: int = 0) -> float:
    """Held-out accuracy of a ridge one-vs-rest classifier from rows `x` [n, d] to labels `y` [n]
    (features standardised; `folds`-fold cross-validation over a fixed permutation)."""
    x = np.asarray(x, dtype=np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    y = np.asarray(y, dtype=np.int64)
    onehot = np.eye(int(y.max()) + 1)[y]  # [n, classes]
    order = np.random.default_rng(seed).permutation(len(y))
    right = 0
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        a = x[train]
        w = np.linalg.solve(a.T @ a + ridge * np.eye(x.shape[1]), a.T @ onehot[train])  # [d, classes]
        right += int((np.argmax(x[test] @ w, 1) == y[test]).sum())
    return right / len(y)


def chance(y: np.ndarray) -> float:
    """The accuracy of always answering the most common class."""
    return float(np.bincount(np.asarray(y, dtype=np.int64)).max() / len(y))


def truth(world, data) -> dict[str, np.ndarray]:
    """The probed labels in the model-facing id order (`data.perm` maps stored item ids to model ids)."""
    item_style, item_genre = np.asarray(world.item_style), np.asarray(world.item_genre)
    if data.perm is not None:
        item_style, item_genre = np.empty_like(item_style), np.empty_like(item_genre)
        item_style[data.perm], item_genre[data.perm] = world.item_style, world.item_genre
    return {"user_style": np.asarray(world.user_style), "item_style": item_style, "item_genre": item_genre}


def cooccurrence_vectors(data, dims: int = 32) -> dict[str, np.ndarray]:
    """User and item vectors of a rank-`dims` SVD of the training interactions (the reference row)."""
    from scipy.sparse.linalg import svds

    m = data.train_matrix()  # [users, items]
    k = min(dims, min(m.shape) - 1)
    u, s, vt = svds(m.astype(np.float64), k=k, random_state=0)
    return {"users": u * s, "items": vt.T * s}


def probe_row(vectors: dict[str, np.ndarray | None], labels: dict[str, np.ndarray]) -> list[float | None]:
    """Probe accuracy for each entry of PROBED; None where the model has no such vectors."""
    out = []
    for kind, label, _ in PROBED:
        v = vectors.get(kind)
        out.append(None if v is None else probe_accuracy(v, labels[label]))
    return out
