"""`bench tables`: the paper's Tables 2-5 from the run records, as Markdown, CSV and LaTeX.

Table 2 sequential, Table 3 direct, Table 4 explanation (without / with a feature hint),
Table 5 efficiency of the VIP5 training variants. Cells are mean ± std over seeds (sample
std), the best value per column (per block) is bold, and a dagger marks a VIP5 cell whose
difference from the strongest baseline is significant (bench/significance.py). Under every
table: the protocol that produced it (item indexing, candidates, decoding, BLEU convention).

Tables 2-4 use untagged records (the models' own configurations); tagged runs are variants
and appear in Table 5 (placement tags) and in the ablations (`bench ablate`).
"""

from __future__ import annotations

import csv
import html
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.errors import UnknownNameError, UsageError
from bench.io import atomic_write_text

FORMATS = ("md", "csv", "tex")
TASK_TABLES = {"sequential": "table2", "direct": "table3", "explanation": "table4"}
TABLE_TITLES = {
    "table2": "Table 2: sequential recommendation",
    "table3": "Table 3: direct recommendation",
    "table4": "Table 4: explanation generation (numbers in %)",
    "table5": "Table 5: training strategies of VIP5 (efficiency)",
}
COLUMNS = {
    "sequential": ["hr@5", "ndcg@5", "hr@10", "ndcg@10"],
    "direct": ["hr@1", "hr@5", "ndcg@5", "hr@10", "ndcg@10"],
    "explanation": ["bleu-4", "rouge-1", "rouge-2", "rouge-l"],
}
SIG_METRIC = {"sequential": "ndcg@10", "direct": "ndcg@10", "explanation": "rouge-l"}
DIGITS = {"sequential": 4, "direct": 4, "explanation": 2}
SEEN = {"sequential": "A-3", "direct": "B-5", "explanation": "C-3"}
UNSEEN = {"sequential": "A-9", "direct": "B-8", "explanation": "C-12"}
PROMPT_ORDER = ["A-3", "A-9", "B-5", "B-8", "C-3", "C-12"]
HINT_PROMPTS = {"C-12"}  # the record's feature word is in the prompt
# models that read the record's feature word: PETER+ as a hint, the reference row retrieves by it
HINT_MODELS = {"peter_plus", "explain_ref"}
STILL_IMPROVING = "↑"  # row mark: a run stopped at its epoch cap while its validation score was still rising
TIME_CAPPED = "⏱"  # row mark: a run stopped by `bench run --time-limit`
PROPOSED = "vip5"  # the model the significance test is about
DISPLAY = {
    "pop": "Pop", "hgn": "HGN", "sasrec": "SASRec", "s3rec": "S3-Rec", "bpr_mf": "BPR-MF", "bpr_mlp": "BPR-MLP",
    "vbpr": "VBPR", "explain_ref": "Most frequent (ref.)", "attn2seq": "Attn2Seq", "nrt": "NRT", "peter": "PETER",
    "peter_plus": "PETER+", "p5": "P5", "vip5": "VIP5",
}
MODEL_ORDER = list(DISPLAY)
METRIC_LABEL = {"hr@1": "HR@1", "hr@5": "HR@5", "hr@10": "HR@10", "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10",
                "bleu-4": "BLEU-4", "rouge-1": "ROUGE-1", "rouge-2": "ROUGE-2", "rouge-l": "ROUGE-L",
                "time_per_epoch_s": "s/epoch", "trainable_pct": "trainable %", "peak_memory_mb": "peak memory (MB)",
                "peak_memory_model_mb": "model's own peak (MB)"}
# Table 5: tags that name a placement variant (README's examples and `bench ablate --study placement`)
PLACEMENT_TAGS = {"self", "self+cross", "full", "placement-self", "placement-self+cross", "placement-full"}
VARIANT_LABEL = {"self": "Self-attention adapters", "self+cross": "Self- & cross-attention adapters",
                 "full": "Full fine-tuning"}
EFFICIENCY = ["time_per_epoch_s", "trainable_pct", "peak_memory_mb"]


def display_name(model: str) -> str:
    return DISPLAY.get(model, model)


def _model_key(model: str) -> tuple:
    return (MODEL_ORDER.index(model), "") if model in MODEL_ORDER else (len(MODEL_ORDER), model)


def prompt_key(p: str) -> tuple:
    return (PROMPT_ORDER.index(p), "") if p in PROMPT_ORDER else (len(PROMPT_ORDER), p)


# ------------------------------------------------------------------------------------ table model


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

    def plain(self, pm: str = " ± ") -> str:
        if not self.values:
            return "–"
        m = f"{self.mean:.{self.digits}f}"
        return m if self.std is None else f"{m}{pm}{self.std:.{self.digits}f}"


@dataclass
class Row:
    label: str
    cells: list[Cell]
    seeds: int
    model: str = ""
    prompt: str | None = None
    records: list[dict] = field(default_factory=list, repr=False)
    extra: list[str] = field(default_factory=list)  # values of the table's extra label columns


@dataclass
class Block:
    title: str | None
    rows: list[Row]


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

    def mark_best(self) -> None:
        """Bold the best mean per column within each block (ties at the shown precision all bold)."""
        for block in self.blocks:
            for j, col in enumerate(self.columns):
                cells = [r.cells[j] for r in block.rows if r.cells[j].values]
                if len(cells) < 2:
                    continue
                sign = -1.0 if col in self.lower_is_better else 1.0
                best = max(sign * round(c.mean, c.digits) for c in cells)
                for c in cells:
                    c.bold = sign * round(c.mean, c.digits) == best


def _group(records: list[dict], key) -> dict:
    out: dict = defaultdict(list)
    for r in records:
        out[key(r)].append(r)
    return out


def make_row(label: str, recs: list[dict], columns: list[str], digits: int | dict) -> Row:
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


# ------------------------------------------------------------------------------------ Tables 2-4


def _untagged(records: list[dict], task: str) -> list[dict]:
    return [r for r in records if r["task"] == task and not r.get("tag")]


def task_table(records: list[dict], task: str, dataset: str) -> Table | None:
    recs = _untagged(records, task)
    if not recs:
        return None
    columns, digits = COLUMNS[task], DIGITS[task]
    groups = _group(recs, lambda r: (r["model"], r.get("prompt") or ""))
    plain = sorted({m for m, p in groups if not p}, key=_model_key)
    prompts = sorted({p for _, p in groups if p}, key=prompt_key)

    def prompted(prompt):
        models = sorted({m for m, p in groups if p == prompt}, key=_model_key)
        return [make_row(f"{display_name(m)} ({prompt})", groups[(m, prompt)], columns, digits) for m in models]

    if task == "explanation":
        blocks = [
            Block("without feature hint", [make_row(display_name(m), groups[(m, "")], columns, digits)
                                           for m in plain if m not in HINT_MODELS]
                  + [r for p in prompts if p not in HINT_PROMPTS for r in prompted(p)]),
            Block("with feature hint", [make_row(display_name(m), groups[(m, "")], columns, digits)
                                        for m in plain if m in HINT_MODELS]
                  + [r for p in prompts if p in HINT_PROMPTS for r in prompted(p)]),
        ]
        blocks = [b for b in blocks if b.rows]
    else:
        blocks = [Block(None, [make_row(display_name(m), groups[(m, "")], columns, digits) for m in plain]
                        + [r for p in prompts for r in prompted(p)])]
    key = f"{TASK_TABLES[task]}_{task}"
    table = Table(key, f"{TABLE_TITLES[TASK_TABLES[task]]} — {dataset}", columns, blocks, task=task)
    table.mark_best()
    table.notes = _protocol_notes(task, recs, records) + significance_notes(table, task)
    return table


def _indexing_note(recs: list[dict]) -> str:
    idx = sorted({r.get("indexing") or "unknown" for r in recs})
    what = {"random": "random (leak-free: item ids carry no order information)",
            "sequential": "sequential (P5's numbering by first appearance, which leaks the next item to generative models)"}
    return "Item indexing: " + "; ".join(what.get(i, i) for i in idx) + "."


def _decoding_note(task: str, recs: list[dict]) -> str | None:
    gen = [r for r in recs if r.get("prompt")]
    if not gen:
        return None
    if task == "explanation":
        return "VIP5/P5 decoding: greedy."
    said = sorted({r["decoding"] for r in gen if r.get("decoding")})
    if said:
        return f"VIP5/P5 decoding: {'; '.join(said)}; {SEEN[task]} seen in training, {UNSEEN[task]} unseen."
    beams = sorted({str(r["config"].get("beams")) for r in gen if "beams" in r.get("config", {})})
    constrained = {r["config"].get("constrained", True) for r in gen}
    how = ("constrained by a prefix trie to valid item ids" if constrained == {True}
           else "unconstrained (invalid ids dropped and counted)" if constrained == {False} else "mixed constraints")
    return f"VIP5/P5 decoding: beam search ({'/'.join(beams)} beams), {how}; {SEEN[task]} seen in training, {UNSEEN[task]} unseen."


def timing_note(recs: list[dict]) -> str | None:
    """How the time figures were taken when runs shared the machine (bench run --jobs N), else None."""
    shared = sorted({int(r.get("concurrent_jobs") or 1) for r in recs})
    if shared == [1]:
        return None
    threads = sorted({str(r["torch_threads"]) for r in recs if r.get("torch_threads")})
    return (f"s/epoch measured with {'/'.join(map(str, shared))} run(s) side by side on one machine "
            f"({'/'.join(threads) or '?'} torch thread(s) each): compare times only between runs made alike.")


def _protocol_notes(task: str, recs: list[dict], all_records: list[dict]) -> list[str]:
    seeds = sorted({r["seed"] for r in recs})
    notes = [f"Test split; mean ± sample std over seeds ({', '.join(map(str, seeds))}; per row in 'seeds'); "
             "best value per column in bold.", _indexing_note(recs)]
    if task == "sequential":
        notes.append("Leave-one-out: each user's last item is the test target, ranked against all items (top 10).")
    elif task == "direct":
        cands = next((r["candidates"] for r in recs if r.get("candidates")), None)
        notes.append("Candidates: " + (cands or "target + 99 sampled items") + " (leave-one-out target).")
    else:
        notes.append("BLEU-4: corpus level on lower-cased word tokens (nltk corpus_bleu, uniform weights, no smoothing); "
                     "ROUGE-1/2/L: sentence-level F1 (rouge-score, no stemming) averaged over records; in percent. "
                     "The official VIP5 notebook computed BLEU over characters, so its BLEU numbers are not comparable. "
                     f"With feature hint: the record's feature word is in the input ({', '.join(sorted(HINT_PROMPTS))}, "
                     f"{', '.join(display_name(m) for m in sorted(HINT_MODELS))}).")
    dec = _decoding_note(task, recs)
    if dec:
        notes.append(dec)
    timing = timing_note(recs)
    if timing:
        notes.append(timing)
    capped = sorted({display_name(r["model"]) for r in recs if r.get("still_improving")})
    if capped:
        notes.append(f"{STILL_IMPROVING} still improving at cap: {', '.join(capped)} stopped at the epoch limit with the "
                     "best validation score at the last epoch (under-trained: give more epochs or steps).")
    timed = sorted({display_name(r["model"]) for r in recs if r.get("time_capped")})
    if timed:
        notes.append(f"{TIME_CAPPED} time-capped: {', '.join(timed)} stopped training at the run's --time-limit "
                     "(the checkpoint kept then was evaluated; the same command continues the training).")
    tagged = [r for r in all_records if r["task"] == task and r.get("tag")]
    if tagged:
        notes.append(f"{len(tagged)} tagged variant record(s) are not in this table (Table 5, ablations).")
    return notes


def significance_notes(table: Table, task: str) -> list[str]:
    """Test each VIP5 row against the strongest baseline of its block (prompted baselines such as
    P5 only with the same prompt); dagger the tested cell."""
    metric = SIG_METRIC[task]
    j = table.columns.index(metric)
    notes = []
    for block in table.blocks:
        for row in [r for r in block.rows if r.model == PROPOSED]:
            base = [r for r in block.rows if r.model != PROPOSED and r.cells[j].values and r.prompt in (None, row.prompt)]
            if not base:
                continue
            best = max(base, key=lambda r: r.cells[j].mean)
            res = _paired(row, best, metric)
            if res is None:
                notes.append(f"{row.label} vs {best.label}: no per-query values in the records (re-run for a test).")
                continue
            row.cells[j].dagger = res.significant
            notes.append(f"{row.label} vs {best.label} (strongest baseline by {METRIC_LABEL[metric]}): "
                         f"difference {res.diff:+.4g}, p = {res.p:.3g} over {res.n} "
                         f"{'users' if task != 'explanation' else 'records'}"
                         f"{' (†: p < 0.05)' if res.significant else ''}.")
    if notes:
        from bench.significance import TEST_NAME

        notes.insert(0, f"Significance ({METRIC_LABEL[metric]}): {TEST_NAME}.")
    return notes


def _paired(a: Row, b: Row, metric: str):
    from bench.significance import paired_test

    return paired_test(a.records, b.records, metric)


# ------------------------------------------------------------------------------------ Table 5


def placement_variant(rec: dict) -> str:
    cfg = rec.get("config", {})
    if cfg.get("train_mode") == "full":
        return "full"
    return cfg.get("adapter_placement", "self+cross")


def efficiency_table(records: list[dict], dataset: str) -> Table | None:
    recs = [r for r in records if r.get("tag") in PLACEMENT_TAGS]
    if not recs:
        return None
    order = list(VARIANT_LABEL)
    digits = {"time_per_epoch_s": 2, "trainable_pct": 2, "peak_memory_mb": 0, "peak_memory_model_mb": 0}
    # the model's own share of the peak (peak minus the process before the model was built): on CPU
    # the interpreter and libraries dominate a tiny model's peak RSS and hide the adapters' saving
    columns = EFFICIENCY + ["peak_memory_model_mb"]
    blocks = []
    for task in [t for t in COLUMNS if any(r["task"] == t for r in recs)]:
        groups = _group([r for r in recs if r["task"] == task], lambda r: (placement_variant(r), r["model"], r.get("tag")))
        rows = []
        for (variant, model, tag), rs in sorted(groups.items(), key=lambda kv: (
                order.index(kv[0][0]) if kv[0][0] in order else len(order), _model_key(kv[0][1]), kv[0][2])):
            # one run writes a record per evaluation prompt with the same efficiency figures: one per seed
            per_seed = {r["seed"]: r for r in sorted(rs, key=lambda r: prompt_key(r.get("prompt") or ""), reverse=True)}
            label = VARIANT_LABEL.get(variant, variant) + ("" if model == PROPOSED else f" ({display_name(model)})")
            row = make_row(label, list(per_seed.values()), columns, digits)
            row.prompt, row.extra = None, [task, tag]
            rows.append(row)
        blocks.append(Block(task, rows))
    kinds = sorted({r.get("memory_kind", "?") for r in recs})
    devices = sorted({r.get("device", "?") for r in recs})
    table = Table("table5_efficiency", f"{TABLE_TITLES['table5']} — {dataset}", columns, blocks,
                  lower_is_better=set(columns), extra_headers=["task", "tag"])
    table.mark_best()
    table.notes = [
        "Rows: VIP5 runs tagged with a placement variant (`bench ablate --study placement`, or `run --tag self|self+cross|full`); "
        "the variant is read from each record's config (adapter_placement, train_mode).",
        "s/epoch: wall-clock seconds of a training pass (validation excluded), mean over epochs; trainable %: trainable / "
        "total parameters; peak memory: " + ", ".join(kinds) + " (cpu_peak_rss = peak resident memory of the run's process, "
        "Python and libraries included; cuda_max_allocated = torch.cuda.max_memory_allocated). Device: "
        + ", ".join(devices) + ". Lower is better in every column; best per task in bold.",
        _indexing_note(recs),
    ] + [n for n in [timing_note(recs)] if n]
    return table


# ------------------------------------------------------------------------------------ rendering


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("–", "--")):
        s = s.replace(a, b)
    return s


def _cell_text(c: Cell, fmt: str) -> str:
    if fmt == "tex":
        t = c.plain(r" $\pm$ ")
        t = rf"\textbf{{{t}}}" if c.bold and c.values else t
        return t + (r"$^\dagger$" if c.dagger else "")
    if fmt == "html":
        t = html.escape(c.plain())
        t = f"<b>{t}</b>" if c.bold and c.values else t
        return t + ("&dagger;" if c.dagger else "")
    t = c.plain()
    t = f"**{t}**" if c.bold and c.values else t
    return t + ("†" if c.dagger else "")


def _headers(table: Table, fmt: str) -> list[str]:
    hs = ["method", *table.extra_headers, "seeds", *(METRIC_LABEL.get(c, c) for c in table.columns)]
    if fmt == "tex":
        return [_tex_escape(h) for h in hs]
    if fmt == "html":
        return [html.escape(h) for h in hs]
    return hs


def render(table: Table, fmt: str) -> str:
    """The table alone (no title or notes) in md, tex, html or csv."""
    if fmt == "csv":
        return _render_csv(table)
    esc = _tex_escape if fmt == "tex" else html.escape if fmt == "html" else (lambda s: s)
    rows = []
    for block in table.blocks:
        if block.title and not table.extra_headers:  # Table 5's blocks are named in its task column
            title = rf"\textit{{{esc(block.title)}}}" if fmt == "tex" else f"<i>{esc(block.title)}</i>" if fmt == "html" \
                else f"*{block.title}*"
            rows.append([title] + [""] * (len(table.columns) + 1))
        for r in block.rows:
            rows.append([esc(r.label), *(esc(str(x)) for x in r.extra), str(r.seeds),
                         *(_cell_text(c, fmt) for c in r.cells)])
    tablefmt = {"md": "github", "tex": "latex_raw", "html": "unsafehtml"}[fmt]
    return tabulate(rows, headers=_headers(table, fmt), tablefmt=tablefmt, disable_numparse=True)


def _render_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [x for c in table.columns for x in (c, f"{c}_std")]
    w.writerow(["block", "method", *table.extra_headers, "seeds", *cols, "best", "significant"])
    for block in table.blocks:
        for r in block.rows:
            vals = []
            for c in r.cells:
                vals += ["" if c.mean is None else f"{c.mean:.6g}", "" if c.std is None else f"{c.std:.6g}"]
            best = ";".join(col for col, c in zip(table.columns, r.cells, strict=True) if c.bold)
            sig = ";".join(col for col, c in zip(table.columns, r.cells, strict=True) if c.dagger)
            w.writerow([block.title or "", r.label, *r.extra, r.seeds, *vals, best, sig])
    return buf.getvalue()


def render_document(table: Table, fmt: str) -> str:
    """Title, table and notes: what is printed and written to the .md/.tex files (csv: the table only)."""
    body = render(table, fmt)
    if fmt == "csv":
        return body
    if fmt == "tex":
        notes = "\n".join(rf"\noindent\footnotesize {_tex_escape(n)}\\" for n in table.notes)
        return f"% {table.title}\n{body}\n{notes}\n"
    notes = "\n".join(f"- {n}" for n in table.notes)
    return f"### {table.title}\n\n{body}\n\n{notes}\n"


# ------------------------------------------------------------------------------------ command


def datasets_with_records(results_dir: str | Path) -> list[str]:
    root = Path(results_dir) / "runs"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob("*.json"))) if root.exists() else []


def build_tables(records: list[dict], dataset: str) -> list[Table]:
    """Tables 2-5 for one dataset's records (those with no records for a table are left out).

    Records with several item indexings get one set of tables per indexing (never mixed)."""
    out = []
    indexings = sorted({r.get("indexing") or "unknown" for r in records})
    for idx in indexings:
        recs = [r for r in records if (r.get("indexing") or "unknown") == idx]
        tables = [t for t in [*(task_table(recs, task, dataset) for task in COLUMNS), efficiency_table(recs, dataset)] if t]
        if len(indexings) > 1:
            for t in tables:
                t.key, t.title = f"{t.key}-{idx}", f"{t.title} (indexing: {idx})"
        out += tables
    return out


def select_datasets(results_dir: str | Path, dataset: str | None) -> list[str]:
    known = datasets_with_records(results_dir)
    if dataset is not None:
        if dataset not in known:
            raise UnknownNameError("dataset", dataset, known, hint=f"(the datasets with records under {Path(results_dir) / 'runs'})")
        return [dataset]
    if not known:
        raise UsageError(f"no run records under {Path(results_dir) / 'runs'}; run `python -m bench run` first")
    return known


def write_tables(tables: list[Table], out_dir: Path) -> list[Path]:
    paths = []
    for t in tables:
        for fmt in FORMATS:
            p = Path(out_dir) / f"{t.key}.{fmt}"
            atomic_write_text(p, render_document(t, fmt))
            paths.append(p)
    return paths


def cmd_tables(args) -> int:
    from bench.results import load_records

    if args.format not in FORMATS:
        raise UnknownNameError("format", args.format, FORMATS)
    for ds in select_datasets(args.results_dir, args.dataset):
        tables = build_tables(load_records(args.results_dir, ds), ds)
        out = Path(args.out) / ds
        for t in tables:
            print(render_document(t, args.format))
        paths = write_tables(tables, out)
        print(f"{ds}: {len(tables)} table(s) written to {out}/ ({len(paths)} files: md, csv, tex)\n")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("tables", help="render the paper's Tables 2-5 from the run records (md, csv, tex)")
    p.add_argument("--dataset", default=None, help="one dataset (default: every dataset that has records)")
    p.add_argument("--format", default="md", help="printed format: md, csv or tex (files are written in all three)")
    p.add_argument("--results-dir", default="results", help="where the run records are (default: ./results)")
    p.add_argument("--out", default="results/tables", help="output directory (default: results/tables)")
