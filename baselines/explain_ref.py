"""The trivial reference explainer: the most frequent training explanation, no model.

For each query it returns the most frequent training explanation written about the query's
feature word; when the feature never occurs in training, the most frequent explanation of the
query's item; when the item has none either, the most frequent explanation overall. Ties go to
the explanation seen first in the training split. It exists so that every explanation table
shows what "no model" scores; every generator must beat it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.data import BenchData
from bench.io import atomic_write_json
from bench.registry import register_model


@dataclass
class ExplainRefConfig:
    """No hyper-parameters: the answer is a count over the training explanations."""


def _key(feature: str) -> str:
    return feature.strip().lower()


def _most_frequent(counts: dict[object, Counter]) -> dict[str, str]:
    # Counter.most_common keeps insertion order among equal counts: the first seen wins a tie
    return {str(k): c.most_common(1)[0][0] for k, c in counts.items()}


@register_model("explain_ref", tasks={"explanation"}, config=ExplainRefConfig)
class ExplainRef:
    """Reference explainer: the most frequent training explanation of the feature word (no model)."""

    REQUIRES = ("reviews",)  # (bench/registry.py: data needs)
    TUNE_GRID: dict = {}  # nothing to tune

    def __init__(self, cfg: ExplainRefConfig, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        data.require("reviews", "explain_ref")
        self.cfg, self.data = cfg, data
        self.by_feature: dict[str, str] = {}
        self.by_item: dict[str, str] = {}  # keys are str(item id) so the tables survive JSON
        self.overall = ""

    def fit(self, log) -> None:
        t0 = time.perf_counter()
        by_feature: dict[str, Counter] = {}
        by_item: dict[int, Counter] = {}
        overall: Counter = Counter()
        for r in self.data.review_split("train"):
            by_feature.setdefault(_key(r.feature), Counter())[r.explanation] += 1
            by_item.setdefault(r.item, Counter())[r.explanation] += 1
            overall[r.explanation] += 1
        self.by_feature, self.by_item = _most_frequent(by_feature), _most_frequent(by_item)
        self.overall = overall.most_common(1)[0][0] if overall else ""
        log.single_fit(time.perf_counter() - t0)

    def explain(self, queries) -> list[str]:
        return [
            self.by_feature.get(_key(q.feature)) or self.by_item.get(str(q.item)) or self.overall for q in queries
        ]

    def save(self, path: Path) -> None:
        atomic_write_json(
            Path(path) / "explain_ref.json",
            {"by_feature": self.by_feature, "by_item": self.by_item, "overall": self.overall},
        )

    def load(self, path: Path) -> None:
        state = json.loads((Path(path) / "explain_ref.json").read_text())
        self.by_feature, self.by_item, self.overall = state["by_feature"], state["by_item"], state["overall"]

    def num_params(self) -> tuple[int, int]:
        return 0, 0
