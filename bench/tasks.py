"""Task registry: everything the suite knows about a task, in one entry.

A task says which metrics it reports (in table order, with their precision), which one early
stopping monitors, which per-query metric the significance test pairs, the no-model reference
row of its figures, the prompts a generative model is tested with (seen / unseen in training),
what a dataset must hold for it, the protocol sentence under its table, and its evaluator.
Every other module asks this registry; adding a task is one `register_task(Task(...))` plus its
evaluator (``evaluate(model, data, task, split, variant, limit, per_query) -> Evaluation``,
named by ``"module:function"``, so that this module imports nothing of the suite but its errors).

The three tasks of the paper are registered here; a plugin module named in $BENCH_PLUGINS may
register more (bench/registry.py loads those before answering).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from bench.errors import UnknownNameError

SEQUENTIAL, DIRECT, EXPLANATION = "sequential", "direct", "explanation"


@dataclass(frozen=True)
class Task:
    name: str
    title: str  # table title, e.g. "Table 2: sequential recommendation"
    table: str  # the paper's table id ("table2"): the file name of the task's table
    metrics: tuple[str, ...]  # table columns, in order; all higher-is-better
    monitor: str  # the validation metric early stopping follows
    significance: str  # the per-query metric of the paired test (users or records)
    evaluator: str  # "module:function" (see the module docstring)
    figure_metrics: tuple[str, ...] = ("hr@10", "ndcg@10")  # the two drawn in each ablation figure
    digits: int = 4  # display precision of its metrics
    percent: bool = False  # metrics are in percent (BLEU/ROUGE): divide by 100 to compare with a [0, 1] metric
    unit: str = "users"  # what one evaluation query is (significance notes)
    reference_model: str = "pop"  # the no-model level every ablation figure draws
    seen_prompt: str | None = None  # the generative models' test prompt seen in training
    unseen_prompt: str | None = None  # and the one held out of training (zero-shot)
    candidates: str | None = None  # the record's candidate protocol; None = ranked against all items
    protocol: str = ""  # the sentence under the task's table ("{candidates}" is filled from the records)
    requires: dict[str, str] = field(default_factory=dict)  # manifest count that must be > 0 -> why not, when 0
    hint_prompts: frozenset[str] = frozenset()  # prompts that put the record's feature word in the input
    hint_models: frozenset[str] = frozenset()  # models that read it: their rows go in a second table block

    @property
    def ranks_all_items(self) -> bool:
        """A ranking task without candidates: each query is ranked against every item."""
        return self.evaluator == _RANK and self.candidates is None

    def evaluate(self, model, data, split: str, variant: str | None = None, limit: int | None = None,
                 per_query: bool = False):
        module, _, func = self.evaluator.partition(":")
        return getattr(importlib.import_module(module), func)(model, data, self.name, split, variant, limit, per_query)

    def unsupported(self, manifest: dict) -> str | None:
        """Why a dataset with this manifest cannot be evaluated on the task, or None."""
        said = (manifest.get("unsupported_tasks") or {}).get(self.name)
        if said:
            return said
        counts = manifest.get("counts", {})
        return next((why for key, why in self.requires.items() if not counts.get(key, 0)), None)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in TASKS and TASKS[task.name] != task:
        raise ValueError(f"task {task.name!r} registered twice")
    if task.monitor not in task.metrics:
        raise ValueError(f"task {task.name!r}: monitor {task.monitor!r} is not one of its metrics {task.metrics}")
    TASKS[task.name] = task
    return task


_RANK = "bench.evaluate:evaluate_ranker"

register_task(Task(
    SEQUENTIAL, "Table 2: sequential recommendation", "table2",
    ("hr@5", "ndcg@5", "hr@10", "ndcg@10"), monitor="ndcg@10", significance="ndcg@10", evaluator=_RANK,
    seen_prompt="A-3", unseen_prompt="A-9",
    protocol="Leave-one-out: each user's last item is the test target, ranked against all items (top 10).",
))
register_task(Task(
    DIRECT, "Table 3: direct recommendation", "table3",
    ("hr@1", "hr@5", "ndcg@5", "hr@10", "ndcg@10"), monitor="ndcg@10", significance="ndcg@10", evaluator=_RANK,
    seen_prompt="B-5", unseen_prompt="B-8",
    candidates="stored per dataset: target + 99 uniformly sampled never-interacted items",
    protocol="Candidates: {candidates} (leave-one-out target).",
))
register_task(
    Task(
        EXPLANATION,
        "Table 4: explanation generation (numbers in %)",
        "table4",
        ("bleu-4", "rouge-1", "rouge-2", "rouge-l"),
        monitor="bleu-4",
        significance="rouge-l",
        evaluator="bench.evaluate:evaluate_explainer",
        figure_metrics=("bleu-4", "rouge-l"),
        digits=2,
        percent=True,
        unit="records",
        reference_model="explain_ref",
        seen_prompt="C-3",
        unseen_prompt="C-12",
        protocol="BLEU-4: corpus level on lower-cased word tokens (nltk corpus_bleu, uniform weights, no smoothing); "
        "ROUGE-1/2/L: sentence-level F1 (rouge-score, no stemming) averaged over records; in percent. "
        "The official VIP5 notebook computed BLEU over characters, so its BLEU numbers are not comparable.",
        requires={"reviews": "the dataset has no reviews (import a release with exp_splits.pkl)"},
        hint_prompts=frozenset({"C-12"}),
        # PETER+ reads the feature word as a hint; the retrieval reference row retrieves by it
        hint_models=frozenset({"peter_plus", "explain_ref"}),
    )
)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UnknownNameError("task", name, list(TASKS))
    return TASKS[name]


def task_support(manifest: dict) -> dict[str, str | None]:
    """Every task -> None when a dataset with this manifest supports it, else one line saying why not."""
    return {name: t.unsupported(manifest) for name, t in TASKS.items()}
