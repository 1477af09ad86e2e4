"""HGN: sliding windows, gate ranges and shapes, consistent scoring, training reduces the loss."""

import numpy as np
import torch

from baselines.hgn import HGN, HGNConfig, HGNNet, sliding_windows
from bench.train import FitLog


def test_sliding_windows_by_hand():
    users, inputs, targets = sliding_windows([np.arange(9), np.array([4, 5, 6, 7]), np.array([1, 2])], L=3, T=2)
    # user 0 (9 items): windows start at 0..4; user 1 (4 items < L+T): one left-padded window;
    # user 2 (2 items <= T): none
    assert users.tolist() == [0, 0, 0, 0, 0, 1]
    assert inputs[0].tolist() == [1, 2, 3] and targets[0].tolist() == [3, 4]  # inputs are tokens (id + 1)
    assert inputs[4].tolist() == [5, 6, 7] and targets[4].tolist() == [7, 8]
    assert inputs[5].tolist() == [0, 5, 6] and targets[5].tolist() == [6, 7]


def test_gates_lie_in_unit_interval_with_expected_shapes():
    cfg = HGNConfig(d=8, L=4)
    net = HGNNet(n_users=5, n_items=30, cfg=cfg)
    window = torch.tensor([[3, 4, 5, 6], [0, 0, 7, 8]])  # second row left-padded
    g_feat, g_inst = net.gates(torch.tensor([0, 3]), window)
    assert g_feat.shape == (2, 4, 8) and g_inst.shape == (2, 4)
    assert ((g_feat > 0) & (g_feat < 1)).all()
    assert ((g_inst[0] > 0) & (g_inst[0] < 1)).all()
    assert (g_inst[1, :2] == 0).all() and ((g_inst[1, 2:] > 0) & (g_inst[1, 2:] < 1)).all()


def test_scores_for_some_items_match_scores_for_all():
    net = HGNNet(n_users=5, n_items=30, cfg=HGNConfig(d=8, L=4))
    q = net.query(torch.tensor([1, 2]), torch.tensor([[3, 4, 5, 6], [0, 0, 7, 8]]))  # [2, d]
    items = torch.tensor([[0, 9, 29], [5, 5, 1]])
    assert torch.allclose(net.score(q, items), net.score_all(q).gather(1, items), atol=1e-6)


def test_training_reduces_the_loss(tiny):
    model = HGN(HGNConfig(batch_size=64, epochs=4), tiny, task="sequential", seed=0)
    log = FitLog(None, "ndcg@10", "hgn", verbose=False)
    model.fit(log)
    losses = [row["loss"] for row in log.history]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.01


def test_one_target_against_several_negatives_trains(tiny):
    """T=1 with neg_samples=3 (the authors' code broadcasts the one target over its negatives)."""
    model = HGN(HGNConfig(batch_size=64, epochs=4, T=1, neg_samples=3), tiny, task="sequential", seed=0)
    log = FitLog(None, "ndcg@10", "hgn", verbose=False)
    model.fit(log)
    losses = [row["loss"] for row in log.history]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.01 and losses[0] < 0.75, "a mean over pairs: ~log 2 at first"
