"""Cornac side of the VBPR cross-check (``cornac.models.VBPR``, trained with torch).

Cornac is given exactly our training interactions (each user's sequence without the
validation and test targets) and our item feature vectors, L2-normalised per item as our VBPR
does by default (that is input preparation, so both sides see the same features). Users and
items are numbered with our ids (Cornac's global id maps, pre-filled in order), so every item,
also one without a training interaction, has parameters, as on our side; Cornac's scores for
all items are then ranked on the stored 100-candidate lists by our evaluator.

Cornac's VBPR has no validation hook: both sides train a fixed number of epochs and the last
epoch is tested.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import OrderedDict

import numpy as np

from bench.data import BenchData
from reference.common import RunResult, ScoreTable, test_result


def init_like_ours(n_users: int, n_items: int, dim: int, k: int, k2: int, seed: int) -> dict:
    """Cornac ``init_params`` drawn from our VBPR's initial distribution (baselines/vbpr.py:
    N(0, 0.01) for gamma, theta and E, zero item and visual biases) instead of Cornac's
    Xavier-uniform, for the diagnostic run that isolates the effect of the initialisation."""
    rng = np.random.default_rng([seed, 17])
    return {
        "Bi": np.zeros(n_items), "Gu": rng.normal(0, 0.01, (n_users, k)), "Gi": rng.normal(0, 0.01, (n_items, k)),
        "Tu": rng.normal(0, 0.01, (n_users, k2)), "E": rng.normal(0, 0.01, (dim, k2)), "Bp": np.zeros((dim, 1)),
    }


def run_vbpr(data: BenchData, params: dict, features: np.ndarray, seed: int) -> RunResult:
    """params: Cornac VBPR keyword arguments (k, k2, n_epochs, batch_size, learning_rate,
    lambda_w, lambda_b, lambda_e, optionally init_params); features [n_items, D] in our item order."""
    from cornac.data import Dataset, ImageModality
    from cornac.models import VBPR

    triples = [(u, int(i), 1.0) for u, seq in enumerate(data.train_sequences()) for i in seq.tolist()]
    uid_map = OrderedDict((u, u) for u in range(data.n_users))
    iid_map = OrderedDict((i, i) for i in range(data.n_items))
    train = Dataset.build(triples, fmt="UIR", global_uid_map=uid_map, global_iid_map=iid_map, seed=seed)
    image = ImageModality(features=features.astype(np.float32), ids=list(range(data.n_items)), normalized=False)
    train.add_modalities(item_image=image.build(id_map=train.iid_map))

    model = VBPR(**params, use_gpu=False, verbose=False, seed=seed)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Optimization finished!"
        model.fit(train)
    fit_s = time.perf_counter() - t0
    if model.total_items != data.n_items or model.total_users != data.n_users:
        raise RuntimeError("Cornac renumbered users or items")
    scores = np.stack([model.score(u) for u in range(data.n_users)])  # [n_users, n_items], our ids
    return test_result(ScoreTable(scores), data, "direct", params["n_epochs"], None, fit_s)
