"""VBPR: needs visual features, uses them in the score (paper Eq. 4), adapts to their dimension."""

import numpy as np
import pytest
import torch

from baselines.vbpr import VBPR, VBPRConfig
from bench.data import Item, User, load_dataset, write_dataset
from bench.errors import MissingDataError
from bench.train import FitLog

N_USERS, N_ITEMS = 20, 130


def _write(root, name, features=None):
    rng = np.random.default_rng(0)
    seqs = [rng.choice(N_ITEMS, size=8, replace=False).tolist() for _ in range(N_USERS)]
    write_dataset(
        root,
        name,
        users=[User(f"u{u}") for u in range(N_USERS)],
        items=[Item(f"i{i}", f"item {i}") for i in range(N_ITEMS)],
        sequences=seqs,
        features=features,
        seed=3,
    )
    return load_dataset(name, root)


def _features(dim, seed=0):
    return np.random.default_rng(seed).normal(size=(N_ITEMS, dim)).astype(np.float32)


def test_dataset_without_features_fails_before_training(tmp_path):
    data = _write(tmp_path, "plain")
    with pytest.raises(MissingDataError, match="'vbpr' needs item features"):
        VBPR(VBPRConfig(), data, task="direct", seed=0)


def test_score_is_bias_plus_latent_plus_visual_terms(tmp_path):
    data = _write(tmp_path, "f3", {"f3": _features(3)})
    model = VBPR(VBPRConfig(factors=2, visual_factors=2, normalize_features=False), data, task="direct", seed=0)
    net = model.net
    with torch.no_grad():
        net.features[5] = torch.tensor([1.0, 0.0, 2.0])
        net.beta_item.weight[5] = 0.5
        net.gamma_user.weight[1] = torch.tensor([1.0, 2.0])
        net.gamma_item.weight[5] = torch.tensor([3.0, -1.0])  # gamma_u . gamma_i = 1
        net.theta_user.weight[1] = torch.tensor([1.0, 1.0])
        net.E.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # E f = (1, 2): theta . E f = 3
        net.beta_visual.weight.copy_(torch.tensor([[0.0, 0.0, 0.25]]))  # beta' . f = 0.5
    score = net(torch.tensor([1]), torch.tensor([[5]])).item()
    assert score == pytest.approx(0.5 + 1.0 + 3.0 + 0.5)


def test_changing_an_items_features_changes_only_its_scores(tmp_path):
    feats = _features(8)
    changed = feats.copy()
    changed[7] = -changed[7] + 1.0
    a = _write(tmp_path, "a", {"f8": feats})
    b = _write(tmp_path, "b", {"f8": changed})
    item = int(a.perm[7])  # the model-facing id of stored item 7 (same in both: same seed and sequences)
    ma, mb = (VBPR(VBPRConfig(epochs=3), d, task="direct", seed=0) for d in (a, b))
    ma.fit(FitLog(None, "ndcg@10", verbose=False))
    mb.net.load_state_dict(ma.net.state_dict())  # identical trained parameters, different features
    queries = a.rank_queries("direct", "test")
    cands = np.stack([q.candidates for q in queries])
    cands[:, 0] = item  # make sure the changed item is scored for every user
    sa, sb = ma._scores(queries, cands), mb._scores(queries, cands)  # [n_users, 100]
    assert np.all(np.abs(sa[:, 0] - sb[:, 0]) > 1e-6), "the visual term must depend on f_i"
    np.testing.assert_array_equal(sa[:, 1:][cands[:, 1:] != item], sb[:, 1:][cands[:, 1:] != item])


@pytest.mark.parametrize("encoder,dim", [("f5", 5), ("f12", 12)])
def test_adapts_to_the_feature_dimension(tmp_path, encoder, dim):
    data = _write(tmp_path, "two", {"f5": _features(5), "f12": _features(12, seed=1)})
    model = VBPR(VBPRConfig(visual_encoder=encoder, visual_factors=4, epochs=1), data, task="direct", seed=0)
    assert tuple(model.net.E.weight.shape) == (4, dim)
    assert tuple(model.net.beta_visual.weight.shape) == (1, dim)
    torch.testing.assert_close(model.net.features.norm(dim=1), torch.ones(N_ITEMS))  # normalised rows
    model.fit(FitLog(None, "ndcg@10", verbose=False))
    ranked = model.rank(data.rank_queries("direct", "test"), 10)
    assert len(ranked) == N_USERS and all(len(r) == 10 for r in ranked)


def test_negatives_are_never_training_interactions(tmp_path):
    from bench.data.sampling import sample_negatives, training_pairs

    data = _write(tmp_path, "neg", {"f3": _features(3)})
    users, items = training_pairs(data)
    seen = np.unique(users * N_ITEMS + items)
    neg = sample_negatives(users, seen, N_ITEMS, np.random.default_rng(0))
    assert neg.shape == users.shape
    assert not np.isin(users * N_ITEMS + neg, seen).any()
