"""Comparison tables from run records (mean ± std over seeds), printed by `bench run`."""

from __future__ import annotations

from collections import defaultdict

from tabulate import tabulate

from bench.report.paper import compared_with_reference, metrics_below
from bench.report.table import METRIC_LABEL, Cell
from bench.tasks import TASKS

EXTRA_METRICS = ["rmse", "mae", "invalid_rate"]


def _mean_std(values: list[float], digits: int) -> str:
    return Cell(values, digits).plain(empty="")


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def _below_reference(groups: dict[tuple, list[dict]], task: str) -> dict[tuple, str]:
    """Status text for the groups whose mean falls under the task's no-model reference row."""
    t = TASKS[task]
    ref = groups.get((t.reference_model, ""))
    if not ref:
        return {}

    def means(rs: list[dict]) -> dict:
        return {m: Cell([r["metrics"][m] for r in rs if m in r["metrics"]], t.digits).mean for m in t.figure_metrics}

    out = {}
    for (model, prompt), rs in groups.items():
        if not compared_with_reference(task, model, prompt or None):
            continue
        under = metrics_below(task, means(rs), means(ref))
        if under:
            out[(model, prompt)] = f" ↓ below {t.reference_model} ({', '.join(METRIC_LABEL[m] for m in under)})"
    return out


def comparison_table(records: list[dict], task: str, failures: list[tuple[str, str]] = (), fmt: str = "github") -> str:
    """One row per (model, tag, prompt): metrics and efficiency figures, mean ± std over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r["task"] == task:
            groups[(r["model"] + (f"+{r['tag']}" if r.get("tag") else ""), r.get("prompt") or "")].append(r)
    metrics = list(TASKS[task].metrics)
    extra = [m for m in EXTRA_METRICS if any(m in r["metrics"] for rs in groups.values() for r in rs)]
    digits = TASKS[task].digits
    below = _below_reference(groups, task)
    rows = []
    for (model, prompt), rs in sorted(groups.items()):
        rows.append(
            [model, prompt or "-", len(rs)]
            + [_mean_std([r["metrics"][m] for r in rs if m in r["metrics"]], digits) for m in metrics + extra]
            + [
                _mean_std([r["time_per_epoch_s"] for r in rs], 2),
                _mean_std([float(r["epochs"]) for r in rs], 0),
                _params(rs[0]["trainable_params"]),
                _mean_std([r["peak_memory_mb"] for r in rs], 0),
                # features from an untrained image tower (`bench features --random-init`) are marked
                "ok"
                + (
                    " (random-init features)"
                    if any((r.get("visual_features") or {}).get("weights") == "random init" for r in rs)
                    else ""
                )
                + (" ↑ still improving at cap" if any(r.get("still_improving") for r in rs) else "")
                + (" ⏱ time-capped" if any(r.get("time_capped") for r in rs) else "")
                + below.get((model, prompt), ""),
            ]
        )
    for model, err in failures:
        status = err if err.startswith("not started") else f"FAILED: {err[:100]}"  # not started: bench/run/preflight.py
        rows.append([model, "-", 0] + [""] * (len(metrics) + len(extra) + 4) + [status])
    headers = ["model", "prompt", "seeds"] + metrics + extra + ["s/epoch", "epochs", "trainable", "peak MB", "status"]
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
