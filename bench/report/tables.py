"""`bench tables`: the paper's Tables 2-5 from the run records, as Markdown, CSV and LaTeX.

Table 2 sequential, Table 3 direct, Table 4 explanation (without / with a feature hint),
Table 5 efficiency of the VIP5 training variants. Cells are mean ± std over seeds (sample
std), the best value per column (per block) is bold, and a dagger marks a VIP5 cell whose
difference from the strongest baseline is significant (bench/significance.py). Under every
table: the protocol that produced it (item indexing, candidates, decoding, BLEU convention).

Tables 2-4 use untagged records (the models' own configurations); tagged runs are variants
and appear in Table 5 (placement tags) and in the ablations (`bench ablate`).

The table model is bench/report/table.py, its rendering bench/report/render.py.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import UnknownNameError, UsageError
from bench.io import atomic_write_text
from bench.registry import all_tasks
from bench.report.paper import add_paper_block, below_reference_notes
from bench.report.render import render_document
from bench.report.table import (
    METRIC_LABEL,
    STILL_IMPROVING,
    TIME_CAPPED,
    Block,
    Row,
    Table,
    display_name,
    group_records,
    make_row,
    model_key,
    prompt_key,
    with_trainer_figures,
)
from bench.tasks import TASKS

FORMATS = ("md", "csv", "tex")
EFFICIENCY_TITLE = "Table 5: training strategies of VIP5 (efficiency)"
PROPOSED = "vip5"  # the model the significance test is about
# Table 5: tags that name a placement variant (README's examples and `bench ablate --study placement`)
PLACEMENT_TAGS = {"self", "self+cross", "full", "placement-self", "placement-self+cross", "placement-full"}
VARIANT_LABEL = {"self": "Self-attention adapters", "self+cross": "Self- & cross-attention adapters",
                 "full": "Full fine-tuning"}
EFFICIENCY = ["time_per_epoch_s", "trainable_pct", "peak_memory_mb"]


# ------------------------------------------------------------------------------------ Tables 2-4


def _untagged(records: list[dict], task: str) -> list[dict]:
    return [r for r in records if r["task"] == task and not r.get("tag")]


def task_table(records: list[dict], task: str, dataset: str) -> Table | None:
    recs = _untagged(records, task)
    if not recs:
        return None
    t = TASKS[task]
    columns, digits = list(t.metrics), t.digits
    groups = group_records(recs, lambda r: (r["model"], r.get("prompt") or ""))
    plain = sorted({m for m, p in groups if not p}, key=model_key)
    prompts = sorted({p for _, p in groups if p}, key=prompt_key)

    def prompted(prompt):
        models = sorted({m for m, p in groups if p == prompt}, key=model_key)
        return [make_row(f"{display_name(m)} ({prompt})", groups[(m, prompt)], columns, digits)
                for m in models]

    if t.hint_prompts or t.hint_models:  # rows that read a hint (the record's feature word) apart
        blocks = [
            Block("without feature hint", [make_row(display_name(m), groups[(m, "")], columns, digits)
                                           for m in plain if m not in t.hint_models]
                  + [r for p in prompts if p not in t.hint_prompts for r in prompted(p)]),
            Block("with feature hint", [make_row(display_name(m), groups[(m, "")], columns, digits)
                                        for m in plain if m in t.hint_models]
                  + [r for p in prompts if p in t.hint_prompts for r in prompted(p)]),
        ]
        blocks = [b for b in blocks if b.rows]
    else:
        blocks = [Block(None, [make_row(display_name(m), groups[(m, "")], columns, digits) for m in plain]
                        + [r for p in prompts for r in prompted(p)])]
    table = Table(f"{t.table}_{task}", f"{t.title} — {dataset}", columns, blocks, task=task)
    table.mark_best()
    table.notes = (_protocol_notes(task, recs, records) + below_reference_notes(table, task)
                   + significance_notes(table, task))
    add_paper_block(table, task, dataset)
    return table


def _indexing_note(recs: list[dict]) -> str:
    idx = sorted({r.get("indexing") or "unknown" for r in recs})
    what = {"random": "random (leak-free: item ids carry no order information)",
            "sequential":  # not a task: P5's item indexing
            "sequential (P5's numbering by first appearance, which leaks the next item to generative models)"}
    return "Item indexing: " + "; ".join(what.get(i, i) for i in idx) + "."


def _decoding_note(task: str, recs: list[dict]) -> str | None:
    gen = [r for r in recs if r.get("prompt")]
    if not gen:
        return None
    t = TASKS[task]
    if t.percent:  # a text task: greedy decoding
        return "VIP5/P5 decoding: greedy."
    prompts = f"{t.seen_prompt} seen in training, {t.unseen_prompt} unseen"
    said = sorted({r["decoding"] for r in gen if r.get("decoding")})
    if said:
        return f"VIP5/P5 decoding: {'; '.join(said)}; {prompts}."
    beams = sorted({str(r["config"].get("beams")) for r in gen if "beams" in r.get("config", {})})
    constrained = {r["config"].get("constrained", True) for r in gen}
    how = ("constrained by a prefix trie to valid item ids" if constrained == {True}
           else "unconstrained (invalid ids dropped and counted)" if constrained == {False}
           else "mixed constraints")
    return f"VIP5/P5 decoding: beam search ({'/'.join(beams)} beams), {how}; {prompts}."


def timing_note(recs: list[dict]) -> str | None:
    """How the time figures were taken when runs shared the machine (bench run --jobs N), else None."""
    shared = sorted({int(r.get("concurrent_jobs") or 1) for r in recs})
    if shared == [1]:
        return None
    threads = sorted({str(r["torch_threads"]) for r in recs if r.get("torch_threads")})
    return (f"s/epoch measured with {'/'.join(map(str, shared))} run(s) side by side on one machine "
            f"({'/'.join(threads) or '?'} torch thread(s) each): compare times only between runs made alike.")


def _history_note(t, recs: list[dict]) -> str:
    """Whether the rankings left each user's history out (RankQuery.exclude), and which rows did not."""
    if not t.ranks_all_items:
        return ""
    left = sorted({display_name(r["model"]) for r in recs if r.get("history_excluded")})
    kept = sorted({display_name(r["model"]) for r in recs if not r.get("history_excluded")})
    if not kept:
        return (" Every ranking leaves the user's history out: no user repeats an item in this dataset's training"
                " sequences, so a history item is never the target.")
    if not left:
        return " Rankings include the user's history items."
    return f" The user's history is left out of the rankings of {', '.join(left)}, not of {', '.join(kept)}."


def _protocol_notes(task: str, recs: list[dict], all_records: list[dict]) -> list[str]:
    seeds = sorted({r["seed"] for r in recs})
    notes = [f"Test split; mean ± sample std over seeds ({', '.join(map(str, seeds))}; per row in 'seeds'); "
             "best value per column in bold.", _indexing_note(recs)]
    t = TASKS[task]
    cands = next((r["candidates"] for r in recs if r.get("candidates")), None) or t.candidates
    protocol = t.protocol.format(candidates=cands)
    if t.hint_prompts or t.hint_models:
        protocol += (f" With feature hint: the record's feature word is in the input "
                     f"({', '.join(sorted(t.hint_prompts))}, "
                     f"{', '.join(display_name(m) for m in sorted(t.hint_models))}).")
    notes.append(protocol + _history_note(t, recs))
    dec = _decoding_note(task, recs)
    if dec:
        notes.append(dec)
    timing = timing_note(recs)
    if timing:
        notes.append(timing)
    capped = sorted({display_name(r["model"]) for r in recs if r.get("still_improving")})
    if capped:
        notes.append(f"{STILL_IMPROVING} still improving at cap: {', '.join(capped)} stopped at the epoch "
                     "limit with the best validation score at the last epoch (under-trained: give more "
                     "epochs or steps).")
    timed = sorted({display_name(r["model"]) for r in recs if r.get("time_capped")})
    if timed:
        notes.append(f"{TIME_CAPPED} time-capped: {', '.join(timed)} stopped training at the run's "
                     "--time-limit (the checkpoint kept then was evaluated; the same command continues "
                     "the training).")
    tagged = [r for r in all_records if r["task"] == task and r.get("tag")]
    if tagged:
        notes.append(f"{len(tagged)} tagged variant record(s) are not in this table (Table 5, ablations).")
    return notes


def significance_notes(table: Table, task: str) -> list[str]:
    """Test each VIP5 row against the strongest baseline of its block (prompted baselines such as
    P5 only with the same prompt); dagger the tested cell."""
    metric = TASKS[task].significance
    j = table.columns.index(metric)
    notes = []
    for block in table.blocks:
        for row in [r for r in block.rows if r.model == PROPOSED]:
            base = [r for r in block.rows
                    if r.model != PROPOSED and r.cells[j].values and r.prompt in (None, row.prompt)]
            if not base:
                continue
            best = max(base, key=lambda r: r.cells[j].mean)
            res = _paired(row, best, metric)
            if res is None:
                notes.append(f"{row.label} vs {best.label}: no per-query values in the records "
                             "(re-run for a test).")
                continue
            row.cells[j].dagger = res.significant
            notes.append(f"{row.label} vs {best.label} (strongest baseline by {METRIC_LABEL[metric]}): "
                         f"difference {res.diff:+.4g}, p = {res.p:.3g} over {res.n} "
                         f"{TASKS[task].unit}"
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


def _variant_key(group_key: tuple) -> tuple:
    """Table 5's row order: variant (as in VARIANT_LABEL), model, tag."""
    variant, model, tag = group_key
    order = list(VARIANT_LABEL)
    return (order.index(variant) if variant in order else len(order), model_key(model), tag)


def efficiency_table(records: list[dict], dataset: str) -> Table | None:
    recs = [r for r in with_trainer_figures(records) if r.get("tag") in PLACEMENT_TAGS]
    if not recs:
        return None
    digits = {"time_per_epoch_s": 2, "trainable_pct": 2, "peak_memory_mb": 0, "peak_memory_model_mb": 0}
    # the model's own share of the peak (peak minus the process before the model was built): on CPU
    # the interpreter and libraries dominate a tiny model's peak RSS and hide the adapters' saving
    columns = EFFICIENCY + ["peak_memory_model_mb"]
    blocks = []
    for task in [t for t in TASKS if any(r["task"] == t for r in recs)]:
        groups = group_records([r for r in recs if r["task"] == task],
                               lambda r: (placement_variant(r), r["model"], r.get("tag")))
        rows = []
        for (variant, model, tag), rs in sorted(groups.items(), key=lambda kv: _variant_key(kv[0])):
            # one run writes a record per evaluation prompt with the same efficiency figures: one per seed
            per_seed = {r["seed"]: r
                        for r in sorted(rs, key=lambda r: prompt_key(r.get("prompt") or ""), reverse=True)}
            who = "" if model == PROPOSED else f" ({display_name(model)})"
            label = VARIANT_LABEL.get(variant, variant) + who
            row = make_row(label, list(per_seed.values()), columns, digits)
            row.prompt, row.extra = None, [task, tag]
            rows.append(row)
        blocks.append(Block(task, rows))
    table = Table("table5_efficiency", f"{EFFICIENCY_TITLE} — {dataset}", columns, blocks,
                  lower_is_better=set(columns), extra_headers=["task", "tag"])
    table.mark_best()
    table.notes = _efficiency_notes(recs)
    return table


def _efficiency_notes(recs: list[dict]) -> list[str]:
    kinds = sorted({r.get("memory_kind", "?") for r in recs})
    devices = sorted({r.get("device", "?") for r in recs})
    return [
        "Rows: VIP5 runs tagged with a placement variant (`bench ablate --study placement`, or "
        "`run --tag self|self+cross|full`); the variant is read from each record's config "
        "(adapter_placement, train_mode).",
        "s/epoch: wall-clock seconds of a training pass (validation excluded), mean over epochs; "
        "trainable %: trainable / total parameters; peak memory: " + ", ".join(kinds)
        + " (cpu_peak_rss = peak resident memory of the run's process, Python and libraries included; "
        "cuda_max_allocated = torch.cuda.max_memory_allocated). Device: "
        + ", ".join(devices) + ". Lower is better in every column; best per task in bold.",
        _indexing_note(recs),
    ] + [n for n in [timing_note(recs)] if n]


# ------------------------------------------------------------------------------------ command


def datasets_with_records(results_dir: str | Path) -> list[str]:
    root = Path(results_dir) / "runs"
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob("*.json")))


def build_tables(records: list[dict], dataset: str) -> list[Table]:
    """Tables 2-5 for one dataset's records (those with no records for a table are left out).

    Records with several item indexings get one set of tables per indexing (never mixed)."""
    out = []
    indexings = sorted({r.get("indexing") or "unknown" for r in records})
    for idx in indexings:
        recs = [r for r in records if (r.get("indexing") or "unknown") == idx]
        tables = [*(task_table(recs, task, dataset) for task in all_tasks()), efficiency_table(recs, dataset)]
        tables = [t for t in tables if t]
        if len(indexings) > 1:
            for t in tables:
                t.key, t.title = f"{t.key}-{idx}", f"{t.title} (indexing: {idx})"
        out += tables
    return out


def select_datasets(results_dir: str | Path, dataset: str | None) -> list[str]:
    known = datasets_with_records(results_dir)
    runs = Path(results_dir) / "runs"
    if dataset is not None:
        if dataset not in known:
            raise UnknownNameError("dataset", dataset, known,
                                   hint=f"(the datasets with records under {runs})")
        return [dataset]
    if not known:
        raise UsageError(f"no run records under {runs}; run `python -m bench run` first")
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
    p.add_argument("--format", default="md",
                   help="printed format: md, csv or tex (files are written in all three)")
    p.add_argument("--results-dir", default="results", help="where the run records are (default: ./results)")
    p.add_argument("--out", default="results/tables", help="output directory (default: results/tables)")
