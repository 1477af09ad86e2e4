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


def below_reference_notes(table: Table, task: str) -> list[str]:
    """One note naming the measured rows below the reference row of their block, per metric."""
    t = TASKS[task]
    found = []
    for block in table.blocks:
        if block.reported:
            continue
        ref = next((r for r in block.rows if r.model == t.reference_model), None)
        if ref is None:
            continue
        for row in block.rows:
            if row is ref:
                continue
            under = []
            for metric in t.figure_metrics:
                j = table.columns.index(metric)
                mine, theirs = row.cells[j].mean, ref.cells[j].mean
                if mine is not None and theirs is not None and round(mine, t.digits) < round(theirs, t.digits):
                    res = paired_test(row.records, ref.records, metric) if row.records and ref.records else None
                    p = "" if res is None else f", p = {res.p:.2g}"  # none for a corpus-level metric (BLEU)
                    under.append(f"{METRIC_LABEL[metric]} {mine:.{t.digits}f} < {theirs:.{t.digits}f}{p}")
            if under:
                found.append(f"{row.label} ({', '.join(under)})")
    if not found:
        return []
    name = display_name(t.reference_model)
    return [f"Below {name}: {'; '.join(found)}. A row under the no-model level is under-trained or broken: "
            "read its learning curve (`bench curves`) before reading it as a result (p: the paired test "
            "over the same queries, where the metric has per-query values)."]
