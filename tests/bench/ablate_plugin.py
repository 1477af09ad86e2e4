"""A stand-in for VIP5 with the same config keys, loaded through BENCH_PLUGINS by the ablation
tests: it trains in milliseconds, so the whole `bench ablate` path (runner, tagged records,
tables, figure) can be tested without training a T5."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from bench.model import rank_by_scores
from bench.registry import register_model

EVAL_PROMPTS = {"sequential": ["A-3", "A-9"], "direct": ["B-5", "B-8"], "explanation": ["C-3", "C-12"]}


@dataclass
class FakeVIP5Config:
    image_tokens: int = 2
    visual_encoder: str | None = None
    adapter_placement: Literal["self", "self+cross"] = "self+cross"
    reduction_factor: int = 8
    train_mode: Literal["adapters", "full"] = "adapters"
    epochs: int = 1


@register_model("fakevip5", tasks={"sequential", "direct", "explanation"}, config=FakeVIP5Config)
class FakeVIP5:
    """Popularity plus, with image tokens, a visual-similarity term (test stand-in for VIP5)."""

    def __init__(self, cfg, data, *, task, device="cpu", seed=0):
        self.cfg, self.data, self.task = cfg, data, task
        self.feats = data.features(cfg.visual_encoder) if cfg.image_tokens else None

    def variants(self, task):
        return EVAL_PROMPTS[task]

    def fit(self, log):
        log.single_fit(0.01 * self.cfg.image_tokens + 0.001)

    def rank(self, queries, k, variant=None):
        pop = self.data.item_popularity.astype(float)

        def scores(batch, cands):
            s = np.tile(pop, (len(batch), 1))
            if self.feats is not None:
                last = np.stack([self.feats[q.history[-1]] for q in batch])  # [B, d]
                s = s + self.cfg.image_tokens * (last @ self.feats.T)
            return s

        return rank_by_scores(queries, k, scores)

    def explain(self, queries, variant=None):
        return [f"the {q.feature or 'item'} is great" for q in queries]

    def save(self, path: Path):
        Path(path).mkdir(parents=True, exist_ok=True)

    def load(self, path: Path):
        pass

    def num_params(self):
        return 1000 // self.cfg.reduction_factor * (10 if self.cfg.train_mode == "full" else 1), 10_000
