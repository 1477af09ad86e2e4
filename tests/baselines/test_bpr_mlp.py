"""BPR-MLP: the NeuMF score, the negative sampler, BPR training and candidate-only scoring."""

import numpy as np
import pytest
import torch

from baselines.bpr_mlp import BPRMLP, BPRMLPConfig, NeuMF
from bench.config import build_config
from bench.data.sampling import sample_negatives, training_pairs
from bench.train import FitLog


def test_score_fuses_the_gmf_and_mlp_branches():
    cfg = BPRMLPConfig(factors=2, layers=(3,), dropout=0.0)
    net = NeuMF(n_users=2, n_items=2, cfg=cfg).eval()
    with torch.no_grad():
        net.user_gmf.weight[1] = torch.tensor([1.0, 2.0])
        net.item_gmf.weight[0] = torch.tensor([3.0, 4.0])  # gmf = (3, 8)
        net.user_mlp.weight[1] = torch.tensor([1.0, -1.0])
        net.item_mlp.weight[0] = torch.tensor([2.0, 0.0])  # mlp input (1, -1, 2, 0)
        lin = net.mlp[0]
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
        lin.bias.zero_()  # pre-activation (3, -1, 2) -> relu (3, 0, 2)
        net.fuse.weight.copy_(torch.tensor([[1.0, 0.5, 1.0, 1.0, -1.0]]))
        net.fuse.bias.fill_(0.25)
    # 3 + 4 (gmf) + 3 + 0 - 2 (mlp) + 0.25
    assert net(torch.tensor([1]), torch.tensor([[0]])).item() == pytest.approx(8.25)


def test_layers_override_builds_the_tower():
    cfg = build_config(BPRMLPConfig, {"layers": "32,16,8", "factors": "8"})
    net = NeuMF(3, 4, cfg)
    widths = [(m.in_features, m.out_features) for m in net.mlp if isinstance(m, torch.nn.Linear)]
    assert widths == [(16, 32), (32, 16), (16, 8)]
    assert net.fuse.in_features == 8 + 8


def test_negatives_are_never_training_interactions(tiny):
    users, items = training_pairs(tiny)
    assert len(users) == sum(len(s) for s in tiny.train_sequences())
    seen = np.unique(users * tiny.n_items + items)
    neg = sample_negatives(users, seen, tiny.n_items, np.random.default_rng(0))
    assert neg.shape == users.shape and neg.min() >= 0 and neg.max() < tiny.n_items
    assert not np.isin(users * tiny.n_items + neg, seen).any()


def test_training_lowers_the_bpr_loss_and_scores_only_candidates(tiny):
    model = BPRMLP(BPRMLPConfig(epochs=3, patience=3, lr=1e-2), tiny, task="direct", seed=0)
    log = FitLog(None, "ndcg@10", verbose=False)
    model.fit(log)
    losses = [row["loss"] for row in log.history]
    assert losses[0] == pytest.approx(np.log(2), abs=0.02)  # small initial scores: -log sigmoid(0)
    assert losses[-1] < losses[0] - 0.05
    queries = tiny.rank_queries("direct", "val")[:7]
    cands = np.stack([q.candidates for q in queries])
    scores = model._scores(queries, cands)
    assert scores.shape == (7, 100)
    # a candidate's score does not depend on the other candidates it is scored with
    np.testing.assert_allclose(model._scores(queries, cands[:, ::-1])[:, ::-1], scores, rtol=1e-6)
