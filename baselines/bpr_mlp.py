"""BPR-MLP: matrix factorisation fused with an MLP over user and item embeddings, trained
with the Bayesian personalised ranking loss.

There is no canonical code for the BPR-MLP baseline of the P5/VIP5 papers. What is
implemented here:

- the scorer is NeuMF (He et al., "Neural Collaborative Filtering", WWW 2017, Sec. 3.4):
  a GMF branch ``p_u * q_i`` (element-wise) and an MLP branch over the concatenation
  ``[p'_u; q'_i]`` of a second, separate pair of embeddings (ReLU tower, e.g. 128 -> 64,
  dropout), fused by one linear layer over ``[gmf; mlp]`` into a scalar score;
- the loss is BPR (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit
  Feedback", UAI 2009): ``-log sigmoid(s(u, i) - s(u, j))`` for every training interaction
  ``(u, i)`` with one negative ``j`` sampled uniformly from the items u never interacted
  with in training, resampled every epoch; L2 on the embedding rows a batch touches (BPR's
  per-sample regularisation) and Adam weight decay on the MLP and fusion weights;
- trained from scratch (NCF's GMF/MLP pre-training is not used), minibatch Adam.

Only the direct task: the query's 100 candidates are scored, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data import BenchData
from bench.data.sampling import embedding_optimizer, fit_bpr
from bench.model import TorchNetState, TrainingCheckpoint, rank_by_scores
from bench.registry import register_model


@dataclass
class BPRMLPConfig:
    factors: int = 64  # GMF embedding size, and the size of each MLP-branch embedding
    layers: tuple[int, ...] = (128, 64)  # MLP tower widths (input = 2 * factors)
    dropout: float = 0.2  # on the MLP tower's hidden layers
    lr: float = 3e-3  # with batch 256: converges in ~20-30 epochs on synthetic (1e-3 needs ~3x as many)
    l2: float = 1e-4  # on the embedding rows of each batch (per-sample, as BPR)
    weight_decay: float = 1e-5  # Adam weight decay on the MLP and fusion weights
    batch_size: int = 256
    epochs: int = 100
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping
    # "adam": every embedding row every step (dense; fused into one kernel). "sparse_adam": only
    # the rows a batch uses (lazy Adam on sparse gradients): a step costs the batch, not the
    # catalogue, but a rarely seen row learns less per epoch (no momentum between its batches),
    # which on a sparse catalogue took more epochs than the per-epoch saving
    embedding_optimizer: str = "adam"


class NeuMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, cfg: BPRMLPConfig):
        super().__init__()
        d, sparse = cfg.factors, cfg.embedding_optimizer == "sparse_adam"
        self.user_gmf, self.item_gmf = nn.Embedding(n_users, d, sparse=sparse), nn.Embedding(n_items, d, sparse=sparse)
        self.user_mlp, self.item_mlp = nn.Embedding(n_users, d, sparse=sparse), nn.Embedding(n_items, d, sparse=sparse)
        tower, width = [], 2 * d
        for out in cfg.layers:
            tower += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = out
        self.mlp = nn.Sequential(*tower)
        self.fuse = nn.Linear(d + width, 1)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.01)  # NCF's initialisation

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users [B], items [B, C] -> scores [B, C]."""
        C = items.shape[1]
        gmf = self.user_gmf(users)[:, None] * self.item_gmf(items)  # [B, C, d]
        pair = torch.cat([self.user_mlp(users)[:, None].expand(-1, C, -1), self.item_mlp(items)], -1)  # [B, C, 2d]
        return self.fuse(torch.cat([gmf, self.mlp(pair)], -1)).squeeze(-1)  # [B, C]

    def embeddings(self) -> list[nn.Embedding]:
        return [self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp]

    def sq_norms(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Squared norms of the embedding rows of users [B] and items [B, C], summed per row: [B]."""
        user = self.user_gmf(users).pow(2).sum(-1) + self.user_mlp(users).pow(2).sum(-1)  # [B]
        return user + (self.item_gmf(items).pow(2) + self.item_mlp(items).pow(2)).sum((-2, -1))  # [B]


@register_model("bpr_mlp", tasks={"direct"}, config=BPRMLPConfig)
class BPRMLP(TrainingCheckpoint, TorchNetState):
    """BPR-MLP: NeuMF-style MF + MLP fusion (He et al., WWW 2017) trained with BPR (Rendle et al., UAI 2009)."""

    TUNE_GRID = {"l2": [1e-5, 1e-4, 1e-3], "dropout": [0.0, 0.2, 0.5], "lr": [1e-3, 3e-3]}

    def __init__(self, cfg: BPRMLPConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        self.cfg, self.data, self.device = cfg, data, device
        torch.manual_seed(seed)  # the same seed gives the same initial network, whoever calls
        self.net = NeuMF(data.n_users, data.n_items, cfg).to(device)
        self.rng = np.random.default_rng(seed)

    def fit(self, log) -> None:
        cfg = self.cfg
        emb = [e.weight for e in self.net.embeddings()]
        rest = [*self.net.mlp.parameters(), *self.net.fuse.parameters()]
        # embeddings get the per-sample L2 in the loss instead of weight decay, which with Adam
        # would shrink every row at every step, also the rows the batch did not use
        opts = [embedding_optimizer(cfg.embedding_optimizer, emb, cfg.lr),
                torch.optim.Adam(rest, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)]
        self._train_state = {"emb_opt": opts[0], "opt": opts[1]}  # checkpointed every epoch (exact resume)
        fit_bpr(self, log, opts, self._batch_loss, batch_size=cfg.batch_size, epochs=cfg.epochs,
                patience=cfg.patience)

    def _batch_loss(self, u: torch.Tensor, ij: torch.Tensor) -> torch.Tensor:
        """BPR loss plus L2 on the batch's embedding rows: users [B], (positive, negative) items [B, 2]."""
        x = self.net(u, ij)  # [B, 2]: one pass for both items
        return -F.logsigmoid(x[:, 0] - x[:, 1]).mean() + self.cfg.l2 * self.net.sq_norms(u, ij).mean()

    @torch.no_grad()
    def _scores(self, batch, cands) -> np.ndarray:
        self.net.eval()
        if cands is None:  # full ranking (not used by the direct task, kept for completeness)
            cands = np.broadcast_to(np.arange(self.data.n_items), (len(batch), self.data.n_items))
        items = torch.as_tensor(np.ascontiguousarray(cands), device=self.device)  # [B, C]
        users = torch.as_tensor([q.user for q in batch], device=self.device)  # [B]
        return self.net(users, items).float().cpu().numpy()  # [B, C]

    def rank(self, queries, k: int) -> list[list[int]]:
        return rank_by_scores(queries, k, self._scores)
