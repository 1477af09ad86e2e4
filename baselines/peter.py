"""PETER and PETER+: a personalised Transformer for explainable recommendation.

Li, Zhang & Chen, "Personalized Transformer for Explainable Recommendation", ACL 2021.

One small Transformer reads ``[user, item, (hint words), <bos>, w_1 ... w_n]``: the user and item
ids are the first two tokens (their own embedding tables), the rest are words. The PETER mask
lets the user and item tokens see each other and every later token see only what precedes it
(left to right), so one pass trains three tasks with the paper's weights:

* explanation generation: next-word cross-entropy at the text positions (weight 1.0);
* context prediction: the item position's output must predict every word of the explanation,
  order ignored (weight 1.0) — it ties the id tokens to the words;
* rating prediction: an MLP on the user position's output, MSE (weight 0.1).

PETER+ (``peter_plus``) is the same network with the record's feature word fed as hint tokens
after the user and item ids (the paper's PETER+, the baseline of VIP5's prompt C-12). Generation
is greedy. Optimiser: Adam instead of the paper's SGD (lr 1.0, decayed 4x on every validation
plateau), which needs many more epochs on a CPU.
"""

from __future__ import annotations

import math
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
class PETERConfig:
    """CPU-sized defaults: the paper uses d_model 512, 2 heads, feed-forward 2048, 2 layers and
    15 words; a 64-wide model learns the embedded dataset in about a minute on a laptop CPU
    (set d_model=512 ffn=2048 for the paper's size on real data)."""

    d_model: int = 64  # user, item and word embedding size = Transformer width (paper: 512)
    heads: int = 2  # as in the paper
    ffn: int = 256  # feed-forward width (paper: 2048)
    layers: int = 2  # as in the paper
    dropout: float = 0.2  # as in the paper
    rating_weight: float = 0.1  # loss weights as in the paper
    context_weight: float = 1.0
    text_weight: float = 1.0
    feature_hint: bool = False  # True = PETER+: the record's feature word after the user and item ids
    hint_words: int = 2  # hint tokens (a multi-word feature is cut, a short one padded and masked)
    vocab_size: int = 20000  # as in the paper
    min_count: int = 1
    max_words: int = 20  # words per explanation, in training and in generation (paper: 15)
    lr: float = 2e-3  # Adam (see the module docstring)
    clip: float = 1.0  # gradient norm clipping, as in the paper
    batch_size: int = 32
    epochs: int = 25
    patience: int = 5  # epochs without validation BLEU-4 improvement


@dataclass
class PETERPlusConfig(PETERConfig):
    """PETER's defaults with the feature-word hint switched on."""

    feature_hint: bool = True


def peter_mask(n_tokens: int) -> torch.Tensor:
    """[L, L] boolean attention mask, True = blocked: left to right, except that the user token
    (position 0) may also see the item token (position 1)."""
    mask = torch.ones(n_tokens, n_tokens, dtype=torch.bool).triu(1)  # causal
    if n_tokens > 1:
        mask[0, 1] = False
    return mask


def sinusoid(n_pos: int, d: int) -> torch.Tensor:
    """The Transformer's fixed sinusoidal position encodings [n_pos, d] (d even)."""
    pos = torch.arange(n_pos, dtype=torch.float32)[:, None]  # [P, 1]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))  # [d/2]
    pe = torch.zeros(n_pos, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


class PETERNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, n_words: int, cfg: PETERConfig):
        super().__init__()
        self.cfg = cfg
        self.user_emb = nn.Embedding(n_users, cfg.d_model)
        self.item_emb = nn.Embedding(n_items, cfg.d_model)
        self.word_emb = nn.Embedding(n_words, cfg.d_model)
        n_pos = 2 + cfg.hint_words + cfg.max_words + 2
        self.register_buffer("pos", sinusoid(n_pos, cfg.d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.d_model, n_words)  # shared by word generation and context prediction
        self.rating = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.Sigmoid(), nn.Linear(cfg.d_model, 1))
        # the paper's initialisation: small uniform embeddings, scaled up by sqrt(d) in forward
        for w in (self.user_emb.weight, self.item_emb.weight, self.word_emb.weight, self.out.weight):
            nn.init.uniform_(w, -0.1, 0.1)
        nn.init.zeros_(self.out.bias)

    def forward(self, user: torch.Tensor, item: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """user, item [B]; text [B, T] word ids (hint, <bos>, words; <pad> masked) -> hidden [B, 2+T, d]."""
        B, L = text.shape[0], text.shape[1] + 2
        x = torch.cat([self.user_emb(user)[:, None], self.item_emb(item)[:, None], self.word_emb(text)], 1)  # [B, L, d]
        x = self.drop(x * math.sqrt(self.cfg.d_model) + self.pos[:L])
        pad = torch.cat([torch.zeros(B, 2, dtype=torch.bool, device=text.device), text == Vocab.pad], 1)  # [B, L]
        return self.encoder(x, mask=peter_mask(L).to(text.device), src_key_padding_mask=pad)  # [B, L, d]


@register_model("peter", tasks={"explanation"}, config=PETERConfig)
class PETER(TrainingCheckpoint, TorchNetState):
    """PETER (Li, Zhang & Chen, ACL 2021): Transformer over [user, item, words] with the PETER mask."""

    REQUIRES = ("reviews",)  # (bench/registry.py: data needs)
    TUNE_GRID = {"d_model": [64, 128, 256], "lr": [1e-3, 2e-3], "dropout": [0.1, 0.2]}
    CONTRACT_OVERRIDES = {"d_model": 16, "ffn": 32, "layers": 1}

    def __init__(self, cfg: PETERConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        data.require("reviews", self.registered_name)
        self.cfg, self.data, self.device = cfg, data, device
        train = data.review_split("train")
        self.vocab = Vocab.build((r.explanation for r in train), cfg.min_count, cfg.vocab_size)
        ratings = [r.rating for r in train]
        self.r_min, self.r_max = float(min(ratings)), float(max(ratings))
        self.net = PETERNet(data.n_users, data.n_items, len(self.vocab), cfg).to(device)
        self.hint_len = cfg.hint_words if cfg.feature_hint else 0  # tokens between the item id and <bos>
        self.rng = np.random.default_rng(seed)

    def _hints(self, features) -> torch.Tensor:
        """Feature words -> hint tokens [B, hint_len] (padded with <pad>, which attention ignores)."""
        if not self.hint_len:
            return torch.zeros(len(features), 0, dtype=torch.long, device=self.device)
        return pad_batch([self.vocab.encode(f, self.hint_len) for f in features], length=self.hint_len).to(self.device)

    def fit(self, log) -> None:
        cfg, dev, H = self.cfg, self.device, self.hint_len
        train = self.data.review_split("train")
        users = torch.tensor([r.user for r in train], device=dev)  # [N]
        items = torch.tensor([r.item for r in train], device=dev)  # [N]
        ratings = torch.tensor([r.rating for r in train], dtype=torch.float32, device=dev)  # [N]
        hints = self._hints([r.feature for r in train])  # [N, H]
        # [N, W+2]
        text = pad_batch([self.vocab.encode(r.explanation, cfg.max_words, bos=True, eos=True) for r in train]).to(dev)
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self._train_state = {"opt": opt}  # checkpointed after every epoch (exact resume)
        for _epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            self.net.train()
            order = torch.from_numpy(self.rng.permutation(len(train))).to(dev)
            total, count = 0.0, 0
            for idx in progress(order.split(cfg.batch_size), desc=f"{self.registered_name} batches"):
                inp, tgt = text[idx, :-1], text[idx, 1:]  # [B, T]: <bos> w_1..w_n -> w_1..w_n <eos>
                h = self.net(users[idx], items[idx], torch.cat([hints[idx], inp], 1))  # [B, 2+H+T, d]
                logits = self.net.out(h[:, 2 + H :])  # [B, T, V]
                t_loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=Vocab.pad)
                # context: the item position predicts each explanation word (a bag of words, no <eos>)
                ctx_logp = F.log_softmax(self.net.out(h[:, 1]), -1)  # [B, V]
                words = tgt.masked_fill(tgt == Vocab.eos, Vocab.pad)  # [B, T]
                keep = words != Vocab.pad
                c_loss = -(ctx_logp.gather(1, words) * keep).sum() / keep.sum().clamp(min=1)
                r_loss = F.mse_loss(self.net.rating(h[:, 0]).squeeze(-1), ratings[idx])
                loss = cfg.text_weight * t_loss + cfg.context_weight * c_loss + cfg.rating_weight * r_loss
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
            yield batch, user, item, self._hints([q.feature for q in batch])

    @torch.no_grad()
    def explain(self, queries) -> list[str]:
        self.net.eval()
        out: list[str] = []
        for batch, user, item, hints in self._batches(queries):
            # no cache: every step re-reads the whole prefix (at most ~25 tokens, cheap)
            def step(tokens, user=user, item=item, hints=hints):
                return self.net.out(self.net(user, item, torch.cat([hints, tokens], 1))[:, -1])  # [B, V]

            out.extend(
                self.vocab.decode(row) for row in greedy_decode(step, len(batch), self.cfg.max_words, self.device)
            )
        return out

    @torch.no_grad()
    def predict_ratings(self, queries) -> list[float]:
        """The user position's rating, clipped to the training range; under the PETER mask it
        depends on the user and item only."""
        self.net.eval()
        out: list[float] = []
        for batch, user, item, hints in self._batches(queries):
            bos = torch.full((len(batch), 1), Vocab.bos, dtype=torch.long, device=self.device)
            h = self.net(user, item, torch.cat([hints, bos], 1))  # [B, 2+H+1, d]
            out.extend(self.net.rating(h[:, 0]).squeeze(-1).clamp(self.r_min, self.r_max).tolist())
        return out


@register_model("peter_plus", tasks={"explanation"}, config=PETERPlusConfig)
class PETERPlus(PETER):
    """PETER+ (Li, Zhang & Chen, ACL 2021): PETER with the feature word as hint tokens."""
