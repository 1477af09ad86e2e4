"""VBPR: visual Bayesian personalised ranking.

He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback", AAAI 2016.

The preference predictor (paper Eq. 4) with the item bias only (the global offset and user
bias cancel in the pairwise loss)::

    x(u, i) = beta_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i

where f_i is the item's visual feature vector (``data.features(cfg.visual_encoder)``, the same
features VIP5 uses; any dimension D), E [K' x D] projects it into the user's visual
preference space and beta' [D] is a visual bias. Trained with BPR (one negative drawn
uniformly from the items the user never interacted with in training, per training
interaction, redrawn every epoch) with minibatch Adam instead of the paper's SGD.

Regularisation follows the paper: L2 on the parameters a sampled triple (u, i, j) touches,
lambda_theta on gamma_u, gamma_i, gamma_j, theta_u and lambda_beta on beta_i, beta_j; the shared
E and beta' have their own weight lambda_E, 0 by default (the authors leave them
unregularised: few parameters, shared by all items). Features are L2-normalised per item by
default so that one learning rate suits any encoder (CLIP features already are).
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
class VBPRConfig:
    factors: int = 32  # K: latent (non-visual) factors gamma
    visual_factors: int = 32  # K': visual factors theta_u and the rows of E
    visual_encoder: str | None = None  # feature set; None = the dataset's default
    normalize_features: bool = True  # L2-normalise each item's feature vector
    lr: float = 3e-3  # with batch 256: converges in ~20-30 epochs on synthetic (1e-3 needs ~3x as many)
    lambda_theta: float = 1e-4  # L2 on gamma_u, gamma_i, gamma_j, theta_u (per sampled triple)
    lambda_beta: float = 1e-4  # L2 on the item biases beta_i, beta_j
    lambda_e: float = 0.0  # L2 on E and beta' (shared by all items; the paper leaves them free)
    batch_size: int = 256
    epochs: int = 100
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping
    # "adam": every embedding row every step (dense; fused into one kernel). "sparse_adam": only
    # a batch's rows (lazy Adam on sparse gradients): cheaper steps on a large catalogue, but rare
    # rows learn less per epoch (see BPRMLPConfig.embedding_optimizer)
    embedding_optimizer: str = "adam"


class VBPRNet(nn.Module):
    def __init__(self, n_users: int, features: torch.Tensor, cfg: VBPRConfig):
        super().__init__()
        n_items, dim = features.shape
        # [n_items, D] fixed data, not trained and not saved with the checkpoint
        self.register_buffer("features", features, persistent=False)
        sparse = cfg.embedding_optimizer == "sparse_adam"
        self.beta_item = nn.Embedding(n_items, 1, sparse=sparse)
        self.gamma_user = nn.Embedding(n_users, cfg.factors, sparse=sparse)
        self.gamma_item = nn.Embedding(n_items, cfg.factors, sparse=sparse)
        self.theta_user = nn.Embedding(n_users, cfg.visual_factors, sparse=sparse)
        self.E = nn.Linear(dim, cfg.visual_factors, bias=False)  # f_i -> E f_i
        self.beta_visual = nn.Linear(dim, 1, bias=False)  # f_i -> beta' . f_i
        for emb in (self.gamma_user, self.gamma_item, self.theta_user):
            nn.init.normal_(emb.weight, std=0.01)
        nn.init.zeros_(self.beta_item.weight)
        nn.init.normal_(self.E.weight, std=0.01)
        nn.init.zeros_(self.beta_visual.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users [B], items [B, C] -> scores x(u, i) [B, C]."""
        f = self.features[items]  # [B, C, D]
        latent = (self.gamma_item(items) * self.gamma_user(users)[:, None]).sum(-1)  # [B, C]
        visual = (self.E(f) * self.theta_user(users)[:, None]).sum(-1)  # [B, C]
        return self.beta_item(items).squeeze(-1) + latent + visual + self.beta_visual(f).squeeze(-1)  # [B, C]


@register_model("vbpr", tasks={"direct"}, config=VBPRConfig)
class VBPR(TrainingCheckpoint, TorchNetState):
    """VBPR (He & McAuley, AAAI 2016): BPR-MF plus a visual term from item image features."""

    REQUIRES = ("features",)  # item visual features (bench/registry.py: data needs)
    TUNE_GRID = {"lambda_theta": [1e-5, 1e-4, 1e-3], "lr": [1e-3, 3e-3], "visual_factors": [16, 32, 64]}

    def __init__(self, cfg: VBPRConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        data.require("features", "vbpr")
        self.cfg, self.data, self.device = cfg, data, device
        feats = torch.from_numpy(data.features(cfg.visual_encoder))  # [n_items, D]
        if cfg.normalize_features:
            feats = F.normalize(feats, dim=1)
        torch.manual_seed(seed)  # the same seed gives the same initial network, whoever calls
        self.net = VBPRNet(data.n_users, feats, cfg).to(device)
        self.rng = np.random.default_rng(seed)

    def fit(self, log) -> None:
        cfg, net = self.cfg, self.net
        # the paper's L2 goes into the loss for the rows a triple touches (Adam's weight decay
        # would shrink every row at every step); E and beta' take weight decay lambda_E
        rows = [net.beta_item.weight, net.gamma_user.weight, net.gamma_item.weight, net.theta_user.weight]
        opts = [embedding_optimizer(cfg.embedding_optimizer, rows, cfg.lr),
                torch.optim.Adam([net.E.weight, net.beta_visual.weight], lr=cfg.lr, weight_decay=cfg.lambda_e,
                                 fused=True)]
        self._train_state = {"emb_opt": opts[0], "opt": opts[1]}  # checkpointed every epoch (exact resume)
        fit_bpr(self, log, opts, self._batch_loss, batch_size=cfg.batch_size, epochs=cfg.epochs,
                patience=cfg.patience)

    def _batch_loss(self, u: torch.Tensor, ij: torch.Tensor) -> torch.Tensor:
        """BPR loss plus the paper's L2 on the rows of the batch's triples: users [B], (pos, neg)
        items [B, 2]."""
        cfg, net = self.cfg, self.net
        x = net(u, ij)  # [B, 2]
        reg = cfg.lambda_theta * (
            net.gamma_user(u).pow(2).sum(-1) + net.theta_user(u).pow(2).sum(-1)
            + net.gamma_item(ij).pow(2).sum((-2, -1))
        ) + cfg.lambda_beta * net.beta_item(ij).pow(2).sum((-2, -1))  # [B]
        return -F.logsigmoid(x[:, 0] - x[:, 1]).mean() + reg.mean()

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

    @torch.no_grad()
    def id_embeddings(self) -> dict[str, np.ndarray]:
        """User [gamma_u, theta_u] and item [gamma_i, E f_i] vectors: the two halves of x(u, i)'s dot
        products, for bench diagnose's hidden-taste probe."""
        n = self.net
        users = torch.cat([n.gamma_user.weight, n.theta_user.weight], 1)  # [n_users, K + K']
        items = torch.cat([n.gamma_item.weight, n.E(n.features)], 1)  # [n_items, K + K']
        return {"users": users.float().cpu().numpy(), "items": items.float().cpu().numpy()}
