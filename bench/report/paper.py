"""What a results table is measured against: the paper's reported rows, and the no-model level.

`paper_results.json` holds the rows of the paper's Tables 2-4 (Geng et al., "VIP5: Towards
Multimodal Foundation Models for Recommendation", EMNLP Findings 2023; its text calls the model
MFM, those rows are VIP5's) for its four Amazon datasets, transcribed from the paper, not
measured here. They go under a dataset's measured rows in their own block, which says they
were not run here and which item indexing the paper used (P5's sequential indexing): a row is
comparable with them only when the table's indexing says the same.

`below_reference_notes` lists every measured row under the task's no-model reference row (pop,
or the retrieval reference of explanations) on the metrics the figures draw: such a row is a
defect to explain (under-trained, or broken), never a result to read past.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from bench.report.table import METRIC_LABEL, Block, Cell, Row, Table, display_name
from bench.significance import paired_test
from bench.tasks import TASKS

PAPER_FILE = Path(__file__).with_name("paper_results.json")
PAPER_SEEDS = "paper"  # what the seeds column shows for a reported row


@functools.cache
def paper_results() -> dict:
    return json.loads(PAPER_FILE.read_text())


def paper_datasets() -> list[str]:
    """The datasets the paper reports (a dataset of that name, any case, gets the paper's rows)."""
    return sorted({d for rows in paper_results()["tables"].values() for d in rows})


def paper_block(task: str, dataset: str, columns: list[str], digits: int) -> Block | None:
    """The paper's rows for `task` on `dataset`, in the paper's order, or None if it reports none."""
    doc = paper_results()
    rows = doc["tables"].get(task, {}).get(dataset.lower())
    if not rows:
        return None
    out = []
    for r in rows:
        label = display_name(r["model"]) + (f" ({r['prompt']})" if r["prompt"] else "")
        cells = [Cell([r["metrics"][c]] if c in r["metrics"] else [], digits) for c in columns]
        # model "" keeps these rows out of the significance test (which needs per-query values)
        out.append(Row(label, cells, PAPER_SEEDS, model="", prompt=r["prompt"]))
    return Block(f"reported in the paper (not run here; {doc['indexing']} indexing)", out, reported=True)


def add_paper_block(table: Table, task: str, dataset: str) -> None:
    block = paper_block(task, dataset, table.columns, TASKS[task].digits)
    if block is not None:
        table.blocks.append(block)
        table.notes.append(f"Paper rows: {paper_results()['source']}")


def compared_with_reference(task: str, model: str, prompt: str | None) -> bool:
    """Whether a row is held against the task's no-model reference row: every other row, except that a
    reference which reads the feature hint (explanations) is compared only with the rows that read it too."""
    t = TASKS[task]
    if model == t.reference_model:
        return False
    return t.reference_model not in t.hint_models or model in t.hint_models or prompt in t.hint_prompts


def metrics_below(task: str, mine: dict[str, float | None], ref: dict[str, float | None]) -> list[str]:
    """The figure metrics on which `mine` (means) is under `ref` at the task's display precision."""
    t = TASKS[task]
    known = [m for m in t.figure_metrics if mine.get(m) is not None and ref.get(m) is not None]
    return [m for m in known if round(mine[m], t.digits) < round(ref[m], t.digits)]


def below_reference_notes(table: Table, task: str) -> list[str]:
    """One note naming the measured rows below the reference row, per metric, with the paired test."""
    t = TASKS[task]
    rows = table.measured_rows()
    ref = next((r for r in rows if r.model == t.reference_model), None)
    if ref is None:
        return []
    theirs = {c: cell.mean for c, cell in zip(table.columns, ref.cells, strict=True)}
    found = []
    for row in [r for r in rows if compared_with_reference(task, r.model, r.prompt)]:
        mine = {c: cell.mean for c, cell in zip(table.columns, row.cells, strict=True)}
        under = []
        for metric in metrics_below(task, mine, theirs):
            res = paired_test(row.records, ref.records, metric) if row.records and ref.records else None
            p = "" if res is None else f", p = {res.p:.2g}"  # none for a corpus-level metric (BLEU)
            under.append(f"{METRIC_LABEL[metric]} {mine[metric]:.{t.digits}f} < {theirs[metric]:.{t.digits}f}{p}")
        if under:
            found.append(f"{row.label} ({', '.join(under)})")
    if not found:
        return []
    name = display_name(t.reference_model)
    return [f"Below {name}: {'; '.join(found)}. A row under the no-model level is under-trained or broken: "
            "read its learning curve (`bench curves`) before reading it as a result (p: the paired test "
            "over the same queries, where the metric has per-query values)."]
