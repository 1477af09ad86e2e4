"""SASRec: self-attentive sequential recommendation.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

The original recipe: every training sequence is seen once per epoch with a next-item loss
at every position (a causal Transformer), not every prefix as a separate sample (RecBole's
way, ~30x slower per epoch for the same data). The loss is cross-entropy over all items by
default (stronger than the paper's one-negative BCE, which is kept as ``loss=bce``); ranking
is over all items (less the user's history on data without repeats: RankQuery.exclude).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data import BenchData
from bench.model import TorchNetState, TrainingCheckpoint, rank_by_scores
from bench.progress import progress
from bench.registry import register_model


@dataclass
class SASRecConfig:
    hidden: int = 64  # d: item embedding and Transformer width
    blocks: int = 2  # self-attention blocks
    heads: int = 1
    dropout: float = 0.5  # the paper's value for the sparse Amazon data
    max_len: int = 50  # the most recent items kept
    loss: Literal["ce", "bce"] = "ce"  # ce: softmax over all items; bce: the paper's one sampled negative
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 200
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping


class SASRecNet(nn.Module):
    def __init__(self, n_items: int, cfg: SASRecConfig):
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)  # token 0 = padding, item i -> i+1
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            cfg.hidden, cfg.heads, dim_feedforward=cfg.hidden, dropout=cfg.dropout, activation="relu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.hidden)
        # small embeddings: inputs are scaled by sqrt(d) and logits are dot products with them
        nn.init.normal_(self.item_emb.weight, std=cfg.hidden**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=cfg.hidden**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, L] left-padded with 0 -> hidden states [B, L, d]."""
        B, L = tokens.shape
        pad = tokens == 0  # [B, L]
        # positions count back from the most recent item, so a batch padded only to its own
        # longest history (L <= max_len) gives the same positions as a full-length one
        pos = torch.arange(self.cfg.max_len - L, self.cfg.max_len, device=tokens.device)
        x = self.item_emb(tokens) * self.cfg.hidden**0.5 + self.pos_emb(pos)[None]  # [B, L, d]
        x = self.drop(x) * (~pad)[..., None]
        # causal mask, and padding keys masked; every query may see itself so no row is all -inf
        causal = torch.ones(L, L, dtype=torch.bool, device=tokens.device).triu(1)  # [L, L] True = blocked
        eye = torch.eye(L, dtype=torch.bool, device=tokens.device)
        blocked = causal[None] | (pad[:, None, :] & ~eye[None])  # [B, L, L]
        mask = blocked.repeat_interleave(self.cfg.heads, 0)  # [B*heads, L, L]
        h = self.encoder(x, mask=mask)  # [B, L, d]
        return self.norm(h)

    def item_logits(self, h: torch.Tensor) -> torch.Tensor:
        """h [N, d] -> scores over real items [N, n_items] (padding column dropped)."""
        return h @ self.item_emb.weight[1:].T


@register_model("sasrec", tasks={"sequential"}, config=SASRecConfig)
class SASRec(TrainingCheckpoint, TorchNetState):
    """SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item history."""

    RUN_COST = 2  # ~100 epochs to early stopping: started before HGN and pop by `bench run --jobs`

    def __init__(self, cfg: SASRecConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        self.cfg, self.data, self.device = cfg, data, device
        self.net = SASRecNet(data.n_items, cfg).to(device)
        self.rng = np.random.default_rng(seed)

    def _pad(self, seqs: list[np.ndarray], max_len: int) -> torch.Tensor:
        """Left-pad (most recent `max_len` items kept) to [B, L] tokens (item id + 1), L = the
        longest history in the batch: most histories are short, so this saves most of the work."""
        length = max(1, min(max_len, max(len(s) for s in seqs)))
        out = np.zeros((len(seqs), length), dtype=np.int64)
        for n, s in enumerate(seqs):
            s = s[-length:]
            if len(s):
                out[n, length - len(s) :] = s + 1
        return torch.from_numpy(out).to(self.device)

    def fit(self, log) -> None:
        cfg = self.cfg
        # one training sequence per user: inputs s[:-1], next-item targets s[1:] (val/test targets held out)
        train = [s[-(cfg.max_len + 1) :] for s in self.data.train_sequences() if len(s) >= 2]
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
        n_items = self.data.n_items
        self._train_state = {"opt": opt}  # checkpointed after every epoch (exact resume)
        for _epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            self.net.train()
            order = self.rng.permutation(len(train))
            batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
            total, count = 0.0, 0
            for idx in progress(batches, desc="sasrec batches"):
                seqs = [train[i] for i in idx]
                inp = self._pad([s[:-1] for s in seqs], cfg.max_len)  # [B, L]
                tgt = self._pad([s[1:] for s in seqs], cfg.max_len)  # [B, L] tokens, 0 = no target
                h = self.net(inp)  # [B, L, d]
                valid = tgt > 0
                hv, tv = h[valid], tgt[valid] - 1  # [N, d], [N] item ids
                if cfg.loss == "ce":
                    loss = F.cross_entropy(self.net.item_logits(hv), tv)
                else:
                    neg = torch.randint(0, n_items, tv.shape, device=self.device)  # [N] (collisions are rare)
                    w = self.net.item_emb.weight[1:]
                    pos_s, neg_s = (hv * w[tv]).sum(-1), (hv * w[neg]).sum(-1)
                    loss = F.binary_cross_entropy_with_logits(pos_s, torch.ones_like(pos_s)) + \
                        F.binary_cross_entropy_with_logits(neg_s, torch.zeros_like(neg_s))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(tv)
                count += len(tv)
            log.add_steps(len(batches))
            log.loss(total / max(count, 1))

    @torch.no_grad()
    def _scores(self, batch, cands=None) -> np.ndarray:
        self.net.eval()
        h = self.net(self._pad([q.history for q in batch], self.cfg.max_len))[:, -1]  # [B, d] last position
        return self.net.item_logits(h).float().cpu().numpy()  # [B, n_items]

    def rank(self, queries, k: int) -> list[list[int]]:
        return rank_by_scores(queries, k, self._scores, batch_size=256)
