"""NRT: neural rating regression with abstractive tips generation.

Li et al., "Neural Rating Regression with Abstractive Tips Generation for Recommendation",
SIGIR 2017.

User and item latent vectors feed (1) a multi-layer perceptron with sigmoid units that regresses
the rating and (2) a GRU that generates the tip (here: the explanation), its initial state
``tanh(W [u; i; r_hat] + b)`` built from the user, the item and the predicted rating. Both are
trained together: ``rating_weight * MSE + cross-entropy of the words``. The paper's third
signal, a bag-of-words regression on the full review text, is left out: the datasets here hold
only the explanation sentence. Generation is greedy (the paper uses beam search).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data import BenchData
from bench.data.text import Vocab, greedy_decode, pad_batch
from bench.model import TorchNetState, TrainingCheckpoint
from bench.progress import progress
from bench.registry import register_model


@dataclass
class NRTConfig:
    """CPU-sized defaults: the paper's latent factors and GRU are a few hundred units wide; 64-d
    factors and 128 GRU units train in well under a minute on the embedded dataset."""

    emb_dim: int = 64  # user, item and word embedding size
    hidden: int = 128  # MLP and GRU width
    mlp_layers: int = 2  # hidden sigmoid layers of the rating regressor (after the first)
    dropout: float = 0.2
    rating_weight: float = 1.0  # the paper weighs rating and text losses equally
    vocab_size: int = 20000
    min_count: int = 1
    max_words: int = 20
    lr: float = 5e-3  # Adam
    weight_decay: float = 0.0
    clip: float = 5.0
    batch_size: int = 32
    epochs: int = 25
    patience: int = 5  # epochs without validation BLEU-4 improvement


class NRTNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, n_words: int, cfg: NRTConfig, r_min: float, r_max: float):
        super().__init__()
        self.r_min, self.r_max = r_min, r_max
        self.user_emb = nn.Embedding(n_users, cfg.emb_dim)
        self.item_emb = nn.Embedding(n_items, cfg.emb_dim)
        layers = [nn.Linear(2 * cfg.emb_dim, cfg.hidden), nn.Sigmoid()]
        for _ in range(cfg.mlp_layers):
            layers += [nn.Linear(cfg.hidden, cfg.hidden), nn.Sigmoid()]
        self.mlp = nn.Sequential(*layers, nn.Linear(cfg.hidden, 1))
        with torch.no_grad():  # start the regressor at the middle of the rating scale
            self.mlp[-1].bias.fill_((r_min + r_max) / 2)
        self.init = nn.Linear(2 * cfg.emb_dim + 1, cfg.hidden)  # [u; i; r_hat] -> GRU h_0
        self.word_emb = nn.Embedding(n_words, cfg.emb_dim, padding_idx=Vocab.pad)
        self.gru = nn.GRU(cfg.emb_dim, cfg.hidden, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden, n_words)

    def encode(self, user: torch.Tensor, item: torch.Tensor):
        """user, item [B] -> predicted rating [B] (clipped to the training range), GRU h_0 [1, B, hidden]."""
        ui = torch.cat([self.user_emb(user), self.item_emb(item)], -1)  # [B, 2e]
        rating = self.mlp(ui).squeeze(-1)  # [B]
        r_hat = rating.clamp(self.r_min, self.r_max)
        # the rating enters centred and scaled to about [-1, 1], like the other inputs
        r_in = (r_hat - (self.r_min + self.r_max) / 2) / max((self.r_max - self.r_min) / 2, 1e-6)
        h0 = torch.tanh(self.init(torch.cat([ui, r_in[:, None]], -1)))  # [B, hidden]
        return rating, h0[None]

    def decode(self, tokens: torch.Tensor, h: torch.Tensor):
        """tokens [B, T] -> logits [B, T, V], new state [1, B, hidden]."""
        out, h = self.gru(self.drop(self.word_emb(tokens)), h)  # [B, T, hidden]
        return self.out(self.drop(out)), h


@register_model("nrt", tasks={"explanation"}, config=NRTConfig)
class NRT(TrainingCheckpoint, TorchNetState):
    """NRT (Li et al., SIGIR 2017): MLP rating regression + GRU tips generation, trained jointly."""

    REQUIRES = ("reviews",)  # (bench/registry.py: data needs)
    TUNE_GRID = {"hidden": [128, 256, 400], "lr": [2e-3, 5e-3], "rating_weight": [0.1, 1.0]}
    CONTRACT_OVERRIDES = {"hidden": 32, "emb_dim": 16, "mlp_layers": 1}

    def __init__(self, cfg: NRTConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        data.require("reviews", "nrt")
        self.cfg, self.data, self.device = cfg, data, device
        train = data.review_split("train")
        self.vocab = Vocab.build((r.explanation for r in train), cfg.min_count, cfg.vocab_size)
        ratings = [r.rating for r in train]
        self.r_min, self.r_max = float(min(ratings)), float(max(ratings))
        self.net = NRTNet(data.n_users, data.n_items, len(self.vocab), cfg, self.r_min, self.r_max).to(device)
        self.rng = np.random.default_rng(seed)

    def fit(self, log) -> None:
        cfg, dev = self.cfg, self.device
        train = self.data.review_split("train")
        users = torch.tensor([r.user for r in train], device=dev)  # [N]
        items = torch.tensor([r.item for r in train], device=dev)  # [N]
        ratings = torch.tensor([r.rating for r in train], dtype=torch.float32, device=dev)  # [N]
        # [N, L]
        text = pad_batch([self.vocab.encode(r.explanation, cfg.max_words, bos=True, eos=True) for r in train]).to(dev)
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._train_state = {"opt": opt}  # checkpointed after every epoch (exact resume)
        for _epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            self.net.train()
            order = torch.from_numpy(self.rng.permutation(len(train))).to(dev)
            total, count = 0.0, 0
            for idx in progress(order.split(cfg.batch_size), desc="nrt batches"):
                rating, h0 = self.net.encode(users[idx], items[idx])
                logits, _ = self.net.decode(text[idx, :-1], h0)  # [B, L-1, V]; teacher forcing
                t_loss = F.cross_entropy(logits.flatten(0, 1), text[idx, 1:].flatten(), ignore_index=Vocab.pad)
                r_loss = F.mse_loss(rating, ratings[idx])
                loss = t_loss + cfg.rating_weight * r_loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), cfg.clip)
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
            log.add_steps(-(-len(order) // cfg.batch_size))
            log.loss(total / max(count, 1))

    def _batches(self, queries, batch_size: int = 256):
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            user = torch.tensor([q.user for q in batch], device=self.device)
            item = torch.tensor([q.item for q in batch], device=self.device)
            yield batch, user, item

    @torch.no_grad()
    def explain(self, queries) -> list[str]:
        self.net.eval()
        out: list[str] = []
        for batch, user, item in self._batches(queries):
            _, h = self.net.encode(user, item)

            def step(tokens):
                nonlocal h
                logits, h = self.net.decode(tokens[:, -1:], h)  # [B, 1, V]
                return logits[:, -1]

            out.extend(
                self.vocab.decode(row) for row in greedy_decode(step, len(batch), self.cfg.max_words, self.device)
            )
        return out

    @torch.no_grad()
    def predict_ratings(self, queries) -> list[float]:
        """Predicted ratings, clipped to the training range (1-5 on Amazon)."""
        self.net.eval()
        out: list[float] = []
        for _, user, item in self._batches(queries):
            rating, _ = self.net.encode(user, item)
            out.extend(rating.clamp(self.r_min, self.r_max).tolist())
        return out
