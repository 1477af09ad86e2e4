"""S3-Rec: self-supervised pre-training for sequential recommendation.

Zhou et al., "S3-Rec: Self-Supervised Learning for Sequential Recommendation with Mutual
Information Maximization", CIKM 2020 (authors' code: github.com/RUCAIBox/CIKM2020-S3Rec).

Two stages, both inside ``fit``:

1. Pre-training of a bidirectional Transformer over item sequences with four objectives:
   AAP (associated attribute prediction: an unmasked position predicts its item's
   attributes), MIP (masked item prediction: a masked position scores its item above a
   sampled negative), MAP (masked attribute prediction: a masked position predicts its
   item's attributes) and SP (segment prediction: a sequence with a masked segment scores
   its own segment above a segment of another sequence). As in the authors' code, every
   prefix of a training sequence is one sample, and its last item is always masked.
2. Fine-tuning of the same network, now causal, for next-item prediction: each training
   sequence once per epoch with a loss at every position (SASRec's recipe), validated and
   early-stopped by the shared loop.

Pre-training losses are summed over positions and attributes as in the authors' code (and
divided by the batch size). Ranking is over all items (less the history: RankQuery.exclude).
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
from bench.progress import pass_was_cut, progress, stage
from bench.registry import register_model

# Under `bench run --time-limit` the pre-training stops after this share of the job's time, so that the
# fine-tuning, which the ranking rests on, keeps the rest (20 pre-training epochs on Amazon Beauty take
# ~55 min on one CPU thread: without a share a 20-minute job would never fine-tune)
PRETRAIN_SHARE_OF_TIME_LIMIT = 0.5


@dataclass
class S3RecConfig:
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2  # hidden and attention dropout
    max_len: int = 50
    # pre-training
    # the paper pre-trains 100 epochs (the authors' script 300); 20 here (10 on the embedded
    # dataset: S3Rec.DATASET_DEFAULTS) -- set 100 for paper-faithful runs on the Amazon data
    pretrain_epochs: int = 20
    pretrain_batch_size: int = 100
    mask_ratio: float = 0.2
    aap_weight: float = 0.2
    mip_weight: float = 1.0
    map_weight: float = 1.0
    sp_weight: float = 0.5
    # fine-tuning
    loss: Literal["ce", "bce"] = "ce"  # ce: softmax over all items; bce: the paper's one sampled negative
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 200
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping


def attribute_matrix(data: BenchData) -> tuple[list[str], np.ndarray]:
    """The attribute vocabulary (sorted) and the items' multi-hot rows [n_items, n_attr]."""
    vocab = sorted({a for it in data.items for a in it.attributes})
    index = {a: j for j, a in enumerate(vocab)}
    m = np.zeros((data.n_items, len(vocab)), dtype=np.float32)
    for i, it in enumerate(data.items):
        m[i, [index[a] for a in it.attributes]] = 1.0
    return vocab, m


class S3RecNet(nn.Module):
    """Token ids: 0 = padding, item i -> i + 1, n_items + 1 = [mask]."""

    def __init__(self, n_items: int, item_attrs: np.ndarray, cfg: S3RecConfig):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        self.mask_id = n_items + 1
        d = cfg.hidden
        self.item_emb = nn.Embedding(n_items + 2, d, padding_idx=0)
        self.attr_emb = nn.Embedding(item_attrs.shape[1], d)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.emb_norm = nn.LayerNorm(d, eps=1e-12)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, dim_feedforward=4 * d, dropout=cfg.dropout, activation="gelu", batch_first=True,
        )  # post-norm, as BERT and the authors' encoder
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        # one bilinear map per pre-training objective (W_AAP, W_MIP, W_MAP, W_SP in the paper)
        self.aap = nn.Linear(d, d)
        self.mip = nn.Linear(d, d)
        self.map = nn.Linear(d, d)
        self.sp = nn.Linear(d, d)
        # item -> multi-hot attributes, indexed by token (padding and [mask] rows are empty)
        attrs = np.zeros((n_items + 2, item_attrs.shape[1]), np.float32)
        attrs[1 : n_items + 1] = item_attrs
        self.register_buffer("token_attrs", torch.from_numpy(attrs), persistent=False)
        # the authors' (BERT) initialisation: N(0, 0.02) for every linear and embedding
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, tokens: torch.Tensor, causal: bool) -> torch.Tensor:
        """tokens [B, L] left-padded with 0 -> hidden states [B, L, d]. Bidirectional for
        pre-training, causal for next-item prediction."""
        B, L = tokens.shape
        pad = tokens == 0  # [B, L]
        # positions count back from the most recent item (the authors pad every sequence to
        # max_len on the left, which gives the same positions)
        pos = torch.arange(self.cfg.max_len - L, self.cfg.max_len, device=tokens.device)
        x = self.drop(self.emb_norm(self.item_emb(tokens) + self.pos_emb(pos)[None]))  # [B, L, d]
        eye = torch.eye(L, dtype=torch.bool, device=tokens.device)
        blocked = pad[:, None, :] & ~eye[None]  # [B, L, L] True = blocked; a query always sees itself
        if causal:
            blocked = blocked | torch.ones(L, L, dtype=torch.bool, device=tokens.device).triu(1)[None]
        return self.encoder(x, mask=blocked.repeat_interleave(self.cfg.heads, 0))  # [B, L, d]

    def item_logits(self, h: torch.Tensor) -> torch.Tensor:
        """h [N, d] -> scores over real items [N, n_items] (padding and [mask] columns dropped)."""
        return h @ self.item_emb.weight[1 : self.n_items + 1].T

    def pretrain_losses(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The four objectives on one batch built by `pretrain_batch`."""
        tokens, masked = b["tokens"], b["masked"]  # [B, L] original and MIP-masked tokens
        B = len(tokens)
        # one encoder pass for the four inputs (fewer, larger calls run much faster on a CPU)
        inputs = torch.cat([masked, b["seg_masked"], b["pos_seg"], b["neg_seg"]])  # [4B, L]
        out = self.forward(inputs, causal=False)  # [4B, L, d]
        h = out[:B]  # [B, L, d] the MIP-masked sequence
        attrs = self.token_attrs[tokens]  # [B, L, A] multi-hot targets
        attr_w = self.attr_emb.weight  # [A, d]
        is_masked = masked == self.mask_id  # [B, L]
        visible = (masked != 0) & ~is_masked  # [B, L]

        # AAP: visible item -> its own attributes (BCE over every attribute, summed per position)
        aap = F.binary_cross_entropy_with_logits(self.aap(h[visible]) @ attr_w.T, attrs[visible], reduction="none")
        # MAP: masked position -> the hidden item's attributes
        map_ = F.binary_cross_entropy_with_logits(self.map(h[is_masked]) @ attr_w.T, attrs[is_masked], reduction="none")
        # MIP: masked position scores its item above a sampled negative (BPR form, as the authors' code)
        hm = self.mip(h[is_masked])  # [M, d]
        pos_s = (hm * self.item_emb(tokens[is_masked])).sum(-1)  # [M]
        neg_s = (hm * self.item_emb(b["neg_items"][is_masked])).sum(-1)  # [M]
        mip = -F.logsigmoid(pos_s - neg_s)
        # SP: context = last position of the sequence with a masked segment; segments are
        # encoded alone (the rest [mask]) and read at the last position too
        ctx, pos_seg, neg_seg = self.sp(out[B : 2 * B, -1]), out[2 * B : 3 * B, -1], out[3 * B :, -1]  # [B, d] each
        sp = -F.logsigmoid((ctx * pos_seg).sum(-1) - (ctx * neg_seg).sum(-1))  # [B]
        # the authors' code sums every loss over positions and attributes; dividing all four by
        # the batch size keeps their relative weights exactly and the scale independent of it
        return {"aap": aap.sum() / B, "mip": mip.sum() / B, "map": map_.sum() / B, "sp": sp.sum() / B}


def left_pad(seqs: list[np.ndarray], length: int) -> np.ndarray:
    """Tokens [B, length]: item id + 1, left-padded with 0, most recent `length` items kept."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for n, s in enumerate(seqs):
        s = s[-length:]
        if len(s):
            out[n, length - len(s) :] = s + 1
    return out


def pretrain_batch(seqs: list[np.ndarray], long_seq: np.ndarray, n_items: int, mask_ratio: float,
                   max_len: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of the four objectives for a batch of (non-empty) sequences, all [B, L] tokens,
    L = the longest sequence in the batch (at most max_len)."""
    mask_id = n_items + 1
    seqs = [s[-max_len:] for s in seqs]
    L = max(len(s) for s in seqs)
    tokens = left_pad(seqs, L)  # [B, L]
    real = tokens > 0
    B = len(seqs)
    # MIP/MAP: mask each item with probability mask_ratio, and always the last one
    to_mask = real & (rng.random((B, L)) < mask_ratio)
    to_mask[:, -1] = True
    masked = np.where(to_mask, mask_id, tokens)
    # one negative per position, never an item of the same sequence
    neg = rng.integers(0, n_items, (B, L)) + 1
    for _ in range(10):
        clash = (neg[:, :, None] == tokens[:, None, :]).any(-1)  # [B, L]
        if not clash.any():
            break
        neg[clash] = rng.integers(0, n_items, int(clash.sum())) + 1
    # SP: a random segment of 1..len//2 items (1 for a single item), and one of the same length
    # cut from the concatenation of all training sequences
    n = real.sum(1)  # [B]
    seg_len = 1 + (rng.random(B) * np.maximum(n // 2, 1)).astype(np.int64)  # [B]
    start = (rng.random(B) * (n - seg_len + 1)).astype(np.int64)  # [B] offset within the sequence
    neg_start = (rng.random(B) * (len(long_seq) - seg_len + 1)).astype(np.int64)  # [B]
    r = np.arange(L)[None] - (L - n)[:, None]  # [B, L] index within the sequence (< 0: padding)
    in_seg = (r >= start[:, None]) & (r < (start + seg_len)[:, None])  # [B, L]
    neg_tok = long_seq[np.clip(neg_start[:, None] + r - start[:, None], 0, len(long_seq) - 1)] + 1  # [B, L]
    outside = np.where(real, mask_id, 0)  # segments alone: the rest of the sequence is [mask]
    return {
        "tokens": tokens, "masked": masked, "neg_items": neg,
        "seg_masked": np.where(in_seg, mask_id, tokens),
        "pos_seg": np.where(in_seg, tokens, outside),
        "neg_seg": np.where(in_seg, neg_tok, outside),
    }


@register_model("s3rec", tasks={"sequential"}, config=S3RecConfig)
class S3Rec(TrainingCheckpoint, TorchNetState):
    """S3-Rec (Zhou et al., CIKM 2020): self-supervised pre-training (AAP, MIP, MAP, SP), then next-item fine-tuning."""

    REQUIRES = ("attributes",)  # item attributes for the AAP/MAP pre-training (bench/registry.py: data needs)
    TUNE_GRID = {"pretrain_epochs": [0, 20, 100], "dropout": [0.2, 0.5], "loss": ["ce", "bce"]}
    CONTRACT_OVERRIDES = {"pretrain_epochs": 1}
    RUN_COST = 3  # pre-training, then fine-tuning (longer than P5 on synthetic): started early by `bench run --jobs`
    # 10 pre-training epochs on the embedded dataset keep `bench run --task sequential` within
    # 3 minutes on 2 cores, and ranked there as well as 20 did (compare with --set pretrain_epochs=20)
    DATASET_DEFAULTS = {"synthetic": {"pretrain_epochs": 10}}

    def __init__(self, cfg: S3RecConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        data.require("attributes", "s3rec")
        self.cfg, self.data, self.device = cfg, data, device
        self.attr_vocab, item_attrs = attribute_matrix(data)
        self.net = S3RecNet(data.n_items, item_attrs, cfg).to(device)
        self.rng = np.random.default_rng(seed)
        self.pretrain_history: list[dict[str, float]] = []  # per pre-training epoch: mean of each loss and the total
        self.pretrain_cut = False  # the time limit ended the pre-training early
        self.pretrain_skipped = False  # resumed from a fine-tuning checkpoint, which holds the pre-trained net

    def _tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}

    def pretrain(self, log) -> None:
        """Stage 1: the four self-supervised objectives on every prefix of every training sequence."""
        cfg = self.cfg
        train = [s[-cfg.max_len :] for s in self.data.train_sequences() if len(s)]
        prefixes = [s[: i + 1] for s in train for i in range(len(s))]
        long_seq = np.concatenate(train)  # where negative segments are cut from
        weights = {"aap": cfg.aap_weight, "mip": cfg.mip_weight, "map": cfg.map_weight, "sp": cfg.sp_weight}
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # under --time-limit the pre-training gets half the job's time, the fine-tuning the rest
        with stage("s3rec pre-training", cfg.pretrain_epochs, share=PRETRAIN_SHARE_OF_TIME_LIMIT):
            for epoch in range(1, cfg.pretrain_epochs + 1):
                if not self._pretrain_epoch(epoch, prefixes, long_seq, weights, opt, log):
                    break

    def _pretrain_epoch(self, epoch, prefixes, long_seq, weights, opt, log) -> bool:
        """One pass over the prefixes; False when the time limit cut it (the pre-training ends there)."""
        cfg = self.cfg
        self.net.train()
        order = self.rng.permutation(len(prefixes))
        # batches of similar lengths waste less work on padding; the batch order is shuffled
        order = order[np.argsort([len(prefixes[i]) for i in order], kind="stable")]
        batches = [order[i : i + cfg.pretrain_batch_size] for i in range(0, len(order), cfg.pretrain_batch_size)]
        batches = [batches[i] for i in self.rng.permutation(len(batches))]
        sums = dict.fromkeys([*weights, "total"], 0.0)
        for idx in progress(batches, desc=f"s3rec pre-training {epoch}"):
            b = pretrain_batch([prefixes[i] for i in idx], long_seq, self.data.n_items, cfg.mask_ratio,
                               cfg.max_len, self.rng)
            losses = self.net.pretrain_losses(self._tensors(b))
            total = sum(weights[k] * v for k, v in losses.items())
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            for k, v in losses.items():
                sums[k] += v.item() / len(batches)
            sums["total"] += total.item() / len(batches)
        if pass_was_cut():
            self.pretrain_cut = True
            log.say(f"pre-training stopped by the time limit during epoch {epoch}/{cfg.pretrain_epochs}")
            return False
        self.pretrain_history.append(sums)
        log.say(f"pre-training epoch {epoch}/{cfg.pretrain_epochs} loss {sums['total']:.4f} "
                + " ".join(f"{k} {sums[k]:.4f}" for k in weights))
        return True

    def fit(self, log) -> None:
        if log.will_resume(self):  # the checkpoint's network was pre-trained and fine-tuned: pre-training again
            self.pretrain_skipped = True  # would be superseded by it (and cost the time a --time-limit gives)
        else:
            self.pretrain(log)
        cfg = self.cfg
        # stage 2: one training sequence per user, inputs s[:-1], next-item targets s[1:]
        train = [s[-(cfg.max_len + 1) :] for s in self.data.train_sequences() if len(s) >= 2]
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        n_items = self.data.n_items
        self._train_state = {"opt": opt}  # checkpointed after every epoch (exact resume)
        for _epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            self.net.train()
            order = self.rng.permutation(len(train))
            batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
            total, count = 0.0, 0
            for idx in progress(batches, desc="s3rec fine-tuning"):
                seqs = [train[i] for i in idx]
                L = max(len(s) for s in seqs) - 1
                inp = torch.from_numpy(left_pad([s[:-1] for s in seqs], L)).to(self.device)  # [B, L]
                tgt = torch.from_numpy(left_pad([s[1:] for s in seqs], L)).to(self.device)  # [B, L], 0 = no target
                h = self.net(inp, causal=True)  # [B, L, d]
                valid = tgt > 0
                hv, tv = h[valid], tgt[valid] - 1  # [N, d], [N] item ids
                if cfg.loss == "ce":
                    loss = F.cross_entropy(self.net.item_logits(hv), tv)
                else:
                    neg = torch.randint(0, n_items, tv.shape, device=self.device)  # [N] (collisions are rare)
                    w = self.net.item_emb.weight[1 : n_items + 1]
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
        hist = [q.history for q in batch]
        L = max(1, min(self.cfg.max_len, max(len(h) for h in hist)))
        h = self.net(torch.from_numpy(left_pad(hist, L)).to(self.device), causal=True)[:, -1]  # [B, d]
        return self.net.item_logits(h).float().cpu().numpy()  # [B, n_items]

    def rank(self, queries, k: int) -> list[list[int]]:
        return rank_by_scores(queries, k, self._scores, batch_size=256)

    def record_extras(self, task: str) -> dict:
        """What the pre-training really did: epochs run (of `pretrain_epochs`), whether the time limit
        cut it, or whether a resumed run took the pre-trained network over from its checkpoint."""
        return {"pretraining": {"epochs_run": len(self.pretrain_history), "of": self.cfg.pretrain_epochs,
                                "cut_by_time_limit": self.pretrain_cut,
                                "taken_over_from_checkpoint": self.pretrain_skipped}}
