"""The model of a results table: cells (mean ± std over seeds), rows, blocks, tables, and the labels
they show (model and metric display names, row marks).

One model for every table the suite prints: the paper's Tables 2-5 (bench/report/tables.py), the
ablation tables (bench/studies/ablate.py), the run summary (bench/report/run_table.py) and the HTML
report. Rendering a Table is bench/report/render.py's job.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from bench.tasks import TASKS

# What a job's efficiency figures describe when it trained nothing itself: a job that reused a multitask
# training another job did (models/shared.py; also across ablation tags with the same config, e.g. VIP5's
# reduction-8 and placement-self+cross are its multimodal-multimodal training) measured only its own
# evaluation's peak, and ran beside as many jobs as its own run had.
TRAINER_FIGURES = ("concurrent_jobs", "torch_threads")
TRAINER_PEAKS = ("peak_memory_mb", "peak_memory_model_mb")


def with_trainer_figures(records: list[dict]) -> list[dict]:
    """`records`, those that reused a training (record["training"]["reused"]) with the memory peaks (the
    larger of theirs and the training job's) and the side-by-side count of the job that trained it, when
    that job's record is among `records`. Its time per epoch is already the training's (FitLog.adopt)."""
    trainers: dict[str, dict] = {}
    for r in records:
        t = r.get("training") or {}
        if t.get("id") and not t.get("reused"):
            trainers.setdefault(t["id"], r)
    out = []
    for r in records:
        t = r.get("training") or {}
        src = trainers.get(t.get("id")) if t.get("reused") else None
        if src is not None:
            r = dict(r) | {k: src[k] for k in TRAINER_FIGURES if k in src}
            r |= {k: max(r[k], src[k]) for k in TRAINER_PEAKS if r.get(k) is not None and src.get(k) is not None}
        out.append(r)
    return out


# row mark: a run stopped at its epoch cap while its validation score was still rising
STILL_IMPROVING = "↑"
TIME_CAPPED = "⏱"  # row mark: a run stopped by `bench run --time-limit`
DISPLAY = {
    "pop": "Pop", "hgn": "HGN", "sasrec": "SASRec", "s3rec": "S3-Rec", "bpr_mf": "BPR-MF",
    "bpr_mlp": "BPR-MLP", "vbpr": "VBPR", "explain_ref": "Most frequent (ref.)", "attn2seq": "Attn2Seq",
    "nrt": "NRT", "peter": "PETER", "peter_plus": "PETER+", "p5": "P5", "vip5": "VIP5",
}
MODEL_ORDER = list(DISPLAY)
METRIC_LABEL = {"hr@1": "HR@1", "hr@5": "HR@5", "hr@10": "HR@10", "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10",
                "bleu-4": "BLEU-4", "rouge-1": "ROUGE-1", "rouge-2": "ROUGE-2", "rouge-l": "ROUGE-L",
                "time_per_epoch_s": "s/epoch", "trainable_pct": "trainable %",
                "peak_memory_mb": "peak memory (MB)", "peak_memory_model_mb": "model's own peak (MB)"}


def display_name(model: str) -> str:
    return DISPLAY.get(model, model)


def model_key(model: str) -> tuple:
    """Sort key: the paper's model order, then unknown models by name."""
    return (MODEL_ORDER.index(model), "") if model in MODEL_ORDER else (len(MODEL_ORDER), model)


def _prompt_order() -> list[str]:
    """Each task's seen then unseen test prompt, in task order (A-3, A-9, B-5, B-8, C-3, C-12)."""
    return [p for t in TASKS.values() for p in (t.seen_prompt, t.unseen_prompt) if p]


def prompt_key(p: str) -> tuple:
    order = _prompt_order()
    return (order.index(p), "") if p in order else (len(order), p)


@dataclass
class Cell:
    values: list[float]
    digits: int
    bold: bool = False
    dagger: bool = False

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None

    def plain(self, pm: str = " ± ", empty: str = "–") -> str:
        """"mean ± std" at the cell's precision (the suite's one formatter of a mean over seeds)."""
        if not self.values:
            return empty
        m = f"{self.mean:.{self.digits}f}"
        return m if self.std is None else f"{m}{pm}{self.std:.{self.digits}f}"


@dataclass
class Row:
    label: str
    cells: list[Cell]
    seeds: int | str  # the number of seeds, or "paper" for a reported row
    model: str = ""
    prompt: str | None = None
    records: list[dict] = field(default_factory=list, repr=False)
    extra: list[str] = field(default_factory=list)  # values of the table's extra label columns


@dataclass
class Block:
    title: str | None
    rows: list[Row]
    reported: bool = False  # rows quoted from the paper (bench/report/paper.py), not measured


@dataclass
class Table:
    key: str  # file stem, e.g. "table2_sequential"
    title: str
    columns: list[str]  # metric keys
    blocks: list[Block]
    notes: list[str] = field(default_factory=list)
    lower_is_better: set[str] = field(default_factory=set)
    extra_headers: list[str] = field(default_factory=list)  # label columns after the row label
    task: str | None = None  # Tables 2-4: the task they show

    def rows(self) -> list[Row]:
        return [r for b in self.blocks for r in b.rows]

    def measured_rows(self) -> list[Row]:
        """The rows of runs (not the paper's reported rows)."""
        return [r for b in self.blocks if not b.reported for r in b.rows]

    def mark_best(self) -> None:
        """Bold the best mean per column within each block (ties at the shown precision all bold)."""
        for block in [b for b in self.blocks if not b.reported]:
            for j, col in enumerate(self.columns):
                cells = [r.cells[j] for r in block.rows if r.cells[j].values]
                if len(cells) < 2:
                    continue
                sign = -1.0 if col in self.lower_is_better else 1.0
                best = max(sign * round(c.mean, c.digits) for c in cells)
                for c in cells:
                    c.bold = sign * round(c.mean, c.digits) == best


def group_records(records: list[dict], key) -> dict:
    """Records by key(record), each group in the records' order."""
    out: dict = defaultdict(list)
    for r in records:
        out[key(r)].append(r)
    return out


def make_row(label: str, recs: list[dict], columns: list[str], digits: int | dict) -> Row:
    """One row from the records of one method (one cell per column: a metric or a record field)."""
    cells = []
    for c in columns:
        d = digits[c] if isinstance(digits, dict) else digits
        vals = [float(r["metrics"][c]) if c in r.get("metrics", {}) else r.get(c) for r in recs]
        cells.append(Cell([v for v in vals if v is not None], d))
    if any(r.get("still_improving") for r in recs):
        label += f" {STILL_IMPROVING}"
    if any(r.get("time_capped") for r in recs):
        label += f" {TIME_CAPPED}"
    return Row(label, cells, len({r["seed"] for r in recs}), recs[0]["model"], recs[0].get("prompt"), recs)
