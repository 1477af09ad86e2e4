"""Popularity: rank items by their number of training interactions.

The "no model" reference for the ranking tasks; every ranking model must beat it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data import BenchData
from bench.io import atomic_write_npy
from bench.model import rank_by_scores
from bench.registry import register_model


@dataclass
class PopConfig:
    """No hyper-parameters: the ranking is the training-interaction count."""


@register_model("pop", tasks={"sequential", "direct"}, config=PopConfig)
class Popularity:
    """Item popularity (training interactions, validation and test targets excluded)."""

    def __init__(self, cfg: PopConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        self.cfg, self.data = cfg, data
        self.counts = np.zeros(data.n_items)

    def fit(self, log) -> None:
        import time

        t0 = time.perf_counter()
        self.counts = self.data.item_popularity.astype(np.float64)
        log.single_fit(time.perf_counter() - t0)

    def rank(self, queries, k: int) -> list[list[int]]:
        # ties broken by item id (stable sort), so the ranking is deterministic
        def scores(batch, cands):
            return np.broadcast_to(self.counts, (len(batch), len(self.counts))) if cands is None else self.counts[cands]

        return rank_by_scores(queries, k, scores)

    def save(self, path: Path) -> None:
        atomic_write_npy(Path(path) / "counts.npy", self.counts)

    def load(self, path: Path) -> None:
        self.counts = np.load(Path(path) / "counts.npy")

    def num_params(self) -> tuple[int, int]:
        return 0, 0
