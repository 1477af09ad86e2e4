"""`bench curves`: the learning curves behind a dataset's records, as a Markdown page and a figure.

Look at them before tuning anything: the loss and the validation metric per epoch (with the
optimizer steps so far, for the models that count them) say whether a row stopped while still
improving, never learned, or overfitted. One curve per training: the records of one job's
prompts share theirs, and VIP5/P5's multitask training is shared by every task's job (its
records name it in `training`), so it is drawn once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from bench.errors import UnknownNameError
from bench.io import atomic_write_bytes, atomic_write_text
from bench.report.table import STILL_IMPROVING, TIME_CAPPED, display_name


@dataclass
class Curve:
    label: str
    history: list[dict]
    monitor: str
    marks: str = ""
    tasks: list[str] = field(default_factory=list)

    def val_keys(self) -> list[str]:
        """The validation columns: the monitored metric, and each task's metric of a multitask training."""
        keys = {k for row in self.history for k in row.get("val", {})}
        return [self.monitor] * (self.monitor in keys) + sorted(k for k in keys if "/" in k and k != self.monitor)


def curves(records: list[dict], models: list[str] | None = None) -> list[Curve]:
    """One Curve per training with a history of more than one epoch (closed-form fits have none), from
    the untagged records (the models' own configurations, as in Tables 2-4; ablation variants apart)."""
    seen: dict[tuple, Curve] = {}
    for r in sorted(records, key=lambda r: (r["model"], r["seed"], r["task"])):
        if r.get("tag") or (models and r["model"] not in models) or len(r.get("history") or []) < 2:
            continue
        training = (r.get("training") or {}).get("id")
        key = (r["model"], r["seed"], training or r["task"])
        if key in seen:
            if r["task"] not in seen[key].tasks:
                seen[key].tasks.append(r["task"])
            continue
        name = display_name(r["model"])
        what = f"training {training}" if training else r["task"]
        marks = (f" {STILL_IMPROVING} still improving" if r.get("still_improving") else "") + (
            f" {TIME_CAPPED} time-capped" if r.get("time_capped") else "")
        seen[key] = Curve(f"{name} · seed {r['seed']} · {what}", r["history"], r.get("monitor") or "", marks,
                          [r["task"]])
    return list(seen.values())


def curve_table(c: Curve) -> str:
    has_steps = any(row.get("steps") is not None for row in c.history)
    keys = c.val_keys()
    rows = []
    for row in c.history:
        loss = row.get("loss")
        rows.append([row["epoch"], *([row.get("steps", "")] if has_steps else []), f"{row.get('train_s', 0):.1f}",
                     "" if loss is None else f"{loss:.4f}",
                     *(f"{row['val'][k]:.4f}" if k in row.get("val", {}) else "" for k in keys)])
    headers = ["epoch", *(["optimizer steps"] if has_steps else []), "train s", "loss", *(f"val {k}" for k in keys)]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def curves_page(dataset: str, cs: list[Curve]) -> str:
    parts = [f"# Learning curves — {dataset}\n",
             "One table per training (validation on the models' validation subsets; "
             f"{STILL_IMPROVING}: the best validation score was at the last epoch of the cap).\n"]
    for c in cs:
        parts.append(f"## {c.label}{c.marks}\n\nUsed by: {', '.join(c.tasks)}.\n\n{curve_table(c)}\n")
    return "\n".join(parts)


def curves_figure(dataset: str, cs: list[Curve]) -> bytes:
    """One panel per training: its loss (left axis) and its monitored validation metric (right axis) per epoch."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(cs))
    rows = -(-len(cs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False)
    for ax, c in zip(axes.flat, cs, strict=False):
        epochs = [row["epoch"] for row in c.history]
        loss = [float("nan") if row.get("loss") is None else row["loss"] for row in c.history]
        val = [row.get("val", {}).get(c.monitor, float("nan")) for row in c.history]
        ax.plot(epochs, loss, color="tab:blue", marker=".", ms=3)
        ax.set_ylabel("training loss", color="tab:blue", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        twin = ax.twinx()
        twin.plot(epochs, val, color="tab:orange", marker=".", ms=3)
        twin.set_ylabel(f"val {c.monitor}", color="tab:orange", fontsize=8)
        ax.set_title(c.label + c.marks, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(cs):]:
        ax.axis("off")
    fig.suptitle(f"Learning curves — {dataset}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def cmd_curves(args) -> int:
    from bench.report.tables import select_datasets
    from bench.results import load_records

    out = Path(args.out)
    for ds in select_datasets(args.results_dir, args.dataset):
        records = load_records(Path(args.results_dir), ds)
        known = sorted({r["model"] for r in records})
        for m in args.models or []:
            if m not in known:
                raise UnknownNameError("model", m, known, hint=f"(the models with records on {ds})")
        cs = curves(records, args.models)
        if not cs:
            print(f"{ds}: no training with more than one epoch")
            continue
        page = curves_page(ds, cs)
        atomic_write_text(out / f"{ds}.md", page)
        atomic_write_bytes(out / f"{ds}.png", curves_figure(ds, cs))
        print(page)
        print(f"{ds}: {len(cs)} learning curve(s) written to {out / ds}.md and {out / ds}.png")
    return 0


def add_parser(sub, csv) -> None:
    p = sub.add_parser("curves", help="learning curves (loss, validation per epoch) behind the records: md + png")
    p.add_argument("--dataset", default=None, help="one dataset (default: every dataset that has records)")
    p.add_argument("--models", type=csv, default=None, help="comma-separated models (default: all)")
    p.add_argument("--results-dir", default="results", help="where the run records are (default: ./results)")
    p.add_argument("--out", default="results/curves", help="output directory (default: results/curves)")
