"""A fourth task that exists only for a test, added the way a user adds one: a plugin module
(named in $BENCH_PLUGINS) with a registry entry, its evaluator and a model registered for it.

The toy task: say how many items each user interacted with in training (metric: the share of
users answered exactly). Every dataset has it (it needs nothing beyond sequences)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.evaluate import Evaluation
from bench.registry import register_model
from bench.tasks import Task, register_task

TOY = register_task(Task(
    "toy-count", "Table T: history length (a toy task)", "tableT", ("exact", "close"), monitor="exact",
    significance="exact", evaluator="toy_task_plugin:evaluate_counts",
    protocol="Each user's number of training interactions, answered exactly (exact) or within one (close).",
))


def evaluate_counts(model, data, task, split, variant=None, limit=None, per_query=False) -> Evaluation:
    truth = np.array([len(s) for s in data.train_sequences()])
    guess = np.asarray(model.count(range(data.n_users)))
    return Evaluation({"exact": float(np.mean(guess == truth)), "close": float(np.mean(abs(guess - truth) <= 1))})


@dataclass
class CounterConfig:
    epochs: int = 1
    off_by: int = 0  # added to every answer (1: no answer is exact, every answer is close)


@register_model("counter", tasks={TOY.name}, config=CounterConfig)
class Counter:
    """Looks the answer up in the training data (the toy task's oracle)."""

    def __init__(self, cfg, data, *, task, device="cpu", seed=0):
        self.cfg, self.data = cfg, data

    def fit(self, log):
        log.single_fit(0.0)

    def count(self, users) -> list[int]:
        seqs = self.data.train_sequences()
        return [len(seqs[u]) + self.cfg.off_by for u in users]

    def save(self, path):
        pass

    def load(self, path):
        pass

    def num_params(self):
        return 0, 0
