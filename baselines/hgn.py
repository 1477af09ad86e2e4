"""HGN: hierarchical gating networks for sequential recommendation.

Ma, Kang & Liu, "Hierarchical Gating Networks for Sequential Recommendation", KDD 2019
(authors' code: github.com/allenjack/HGN).

A user's next items are scored from the last L items through three terms (eq. 9 of the
paper): the user embedding (long-term taste), the gated pooling of the last L items
(feature gating picks embedding dimensions, instance gating weighs the L items, both
conditioned on the user), and the item-item product (the sum of the L items' embeddings).
Training samples are sliding windows over each user's training sequence: L inputs and the
T items that follow as targets, each paired with one sampled negative in a BPR loss.

Differences from the authors' code, all towards the paper's description: the two
instance-gating weights are trained parameters (the code keeps them as plain tensors that
the optimiser never sees), padding items have a zero embedding and are left out of the
instance-gated average (the code gives padding a learned embedding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from bench.data import BenchData
from bench.model import TorchNetState, TrainingCheckpoint, rank_by_scores
from bench.progress import progress
from bench.registry import register_model


@dataclass
class HGNConfig:
    # Defaults chosen on validation NDCG@10 of Amazon Beauty (one seed; each change helped there):
    # L=3, T=1 (more windows from Beauty's short sequences), 10 negatives per target (the authors'
    # code allows neg_samples != T), d=100, l2 1e-4 (the authors' 1e-3 is for batch 4096 on a summed
    # loss: the same strength at batch 512 is ~1e-4). Test HR@10 0.0549 / NDCG@10 0.0266 there (the P5
    # paper's HGN row: 0.0512 / 0.0266); d=50, L=3, T=3 with 3 negatives, l2 1e-4 gave 0.0458 / 0.0226.
    d: int = 100  # embedding size (the authors' 50)
    L: int = 3  # input window: the last L items (the authors' 5)
    T: int = 1  # targets per window (the authors' 3)
    # sampled negatives per window: paired one to one with the T targets when equal (the authors' default,
    # 3 and 3), else every target against each of them (T or neg_samples 1, as their code broadcasts)
    neg_samples: int = 10
    lr: float = 1e-3
    l2: float = 1e-4  # Adam weight decay; the loss is summed over the batch as in the authors' code
    # the authors' 4096 leaves ~2 optimiser steps per epoch on the embedded dataset (~5k windows);
    # 512 gives the steps at the same cost per epoch (chosen on the validation split)
    batch_size: int = 512
    epochs: int = 200
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping


class HGNNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, cfg: HGNConfig):
        super().__init__()
        d = cfg.d
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)  # input side; token 0 = padding, item i -> i+1
        self.feature_gate_item = nn.Linear(d, d)  # W_g1
        self.feature_gate_user = nn.Linear(d, d)  # W_g2 (its bias is b_g)
        self.instance_gate_item = nn.Parameter(torch.empty(d, 1))  # w_g3
        self.instance_gate_user = nn.Parameter(torch.empty(d, cfg.L))  # W_g4: one weight per window position
        self.out_emb = nn.Embedding(n_items, d)  # W2: output side item embeddings
        self.out_bias = nn.Embedding(n_items, 1)  # b2: item bias
        nn.init.xavier_uniform_(self.instance_gate_item)
        nn.init.xavier_uniform_(self.instance_gate_user)
        for emb in (self.user_emb, self.item_emb, self.out_emb):
            nn.init.normal_(emb.weight, std=1.0 / d)
        nn.init.zeros_(self.out_bias.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def gates(self, users: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """users [B], window [B, L] tokens (0 = padding) -> feature gate [B, L, d], instance gate [B, L]
        (0 at padding positions)."""
        e = self.item_emb(window)  # [B, L, d]
        u = self.user_emb(users)  # [B, d]
        g_feat = torch.sigmoid(self.feature_gate_item(e) + self.feature_gate_user(u)[:, None])  # [B, L, d]
        gated = e * g_feat  # [B, L, d]
        g_inst = torch.sigmoid((gated @ self.instance_gate_item).squeeze(-1) + u @ self.instance_gate_user)  # [B, L]
        return g_feat, g_inst * (window > 0)

    def query(self, users: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """The vector whose dot product with an output item embedding is that item's score
        (bias aside): user + gated average of the window + sum of the window items. [B, d]"""
        e = self.item_emb(window)  # [B, L, d]
        g_feat, g_inst = self.gates(users, window)
        pooled = (e * g_feat * g_inst[..., None]).sum(1) / g_inst.sum(1, keepdim=True).clamp_min(1e-8)  # [B, d]
        return self.user_emb(users) + pooled + e.sum(1)

    def score(self, q: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """q [B, d], items [B, K] -> scores [B, K]."""
        return torch.einsum("bd,bkd->bk", q, self.out_emb(items)) + self.out_bias(items).squeeze(-1)

    def score_all(self, q: torch.Tensor) -> torch.Tensor:
        """q [B, d] -> scores over all items [B, n_items]."""
        return q @ self.out_emb.weight.T + self.out_bias.weight.T


def sliding_windows(seqs: list[np.ndarray], L: int, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window of L inputs followed by T targets in each sequence, stride 1 (users [N],
    inputs [N, L] tokens = item id + 1, targets [N, T] item ids). A sequence shorter than L + T
    gives one window, its inputs left-padded with 0 (as Caser's and HGN's code do); a sequence
    with T items or fewer gives none."""
    users, inputs, targets = [], [], []
    for u, s in enumerate(seqs):
        if len(s) <= T:
            continue
        tokens = np.asarray(s, dtype=np.int64) + 1
        if len(s) < L + T:
            tokens = np.concatenate([np.zeros(L + T - len(s), np.int64), tokens])
        win = np.lib.stride_tricks.sliding_window_view(tokens, L + T)  # [W, L+T]
        users.append(np.full(len(win), u))
        inputs.append(win[:, :L])
        targets.append(win[:, L:] - 1)
    if not users:
        return np.zeros(0, np.int64), np.zeros((0, L), np.int64), np.zeros((0, T), np.int64)
    return np.concatenate(users), np.concatenate(inputs), np.concatenate(targets)


@register_model("hgn", tasks={"sequential"}, config=HGNConfig)
class HGN(TrainingCheckpoint, TorchNetState):
    """HGN (Ma et al., KDD 2019): feature and instance gating over the last L items, plus user and item-item terms."""

    TUNE_GRID = {"L": [3, 5], "neg_samples": [3, 10], "d": [50, 100]}

    def __init__(self, cfg: HGNConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        self.cfg, self.data, self.device = cfg, data, device
        self.net = HGNNet(data.n_users, data.n_items, cfg).to(device)
        self.rng = np.random.default_rng(seed)

    def _negatives(self, users: np.ndarray, shape: tuple[int, int], seen: sp.csr_matrix) -> np.ndarray:
        """Uniform items the user has not interacted with in training, [B, N]."""
        neg = self.rng.integers(0, self.data.n_items, shape)
        for _ in range(10):  # redraw collisions; a few rounds leave essentially none
            hit = np.asarray(seen[np.repeat(users, shape[1]), neg.ravel()]).reshape(shape) > 0
            if not hit.any():
                break
            neg[hit] = self.rng.integers(0, self.data.n_items, int(hit.sum()))
        return neg

    def fit(self, log) -> None:
        cfg = self.cfg
        train = self.data.train_sequences()
        users, inputs, targets = sliding_windows(train, cfg.L, cfg.T)
        rows = np.concatenate([np.full(len(s), u) for u, s in enumerate(train)])
        seen = sp.csr_matrix(
            (np.ones(len(rows)), (rows, np.concatenate(train))), shape=(self.data.n_users, self.data.n_items)
        )
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.l2)
        to = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        self._train_state = {"opt": opt}  # checkpointed after every epoch (exact resume)
        for _epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            self.net.train()
            order = self.rng.permutation(len(users))
            batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
            total, pairs = 0.0, 0
            for idx in progress(batches, desc="hgn batches"):
                neg = self._negatives(users[idx], (len(idx), cfg.neg_samples), seen)  # [B, N]
                q = self.net.query(to(users[idx]), to(inputs[idx]))  # [B, d]
                pos_s = self.net.score(q, to(targets[idx]))  # [B, T]
                neg_s = self.net.score(q, to(neg))  # [B, N]
                # BPR, summed over the batch like the authors' code (Adam makes the scale matter
                # only relative to the weight decay); T == N: target t against negative t
                diff = pos_s - neg_s if cfg.T == cfg.neg_samples else pos_s[:, :, None] - neg_s[:, None, :]
                loss = -F.logsigmoid(diff).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item()
                pairs += diff.numel()
            log.add_steps(len(batches))
            log.loss(total / max(pairs, 1))  # mean BPR loss per (target, negative) pair

    def _window(self, histories) -> torch.Tensor:
        """The last L items of each history as left-padded tokens [B, L]."""
        L = self.cfg.L
        out = np.zeros((len(histories), L), dtype=np.int64)
        for n, h in enumerate(histories):
            h = np.asarray(h[-L:], dtype=np.int64)
            if len(h):
                out[n, L - len(h) :] = h + 1
        return torch.from_numpy(out).to(self.device)

    @torch.no_grad()
    def _scores(self, batch, cands=None) -> np.ndarray:
        self.net.eval()
        users = torch.tensor([q.user for q in batch], device=self.device)
        q = self.net.query(users, self._window([q.history for q in batch]))  # [B, d]
        return self.net.score_all(q).float().cpu().numpy()  # [B, n_items]

    def rank(self, queries, k: int) -> list[list[int]]:
        return rank_by_scores(queries, k, self._scores, batch_size=1024)
