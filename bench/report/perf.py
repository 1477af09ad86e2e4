"""`python -m bench perf-report REPORT.json [--out README.md]`: a readable page from a
pytest-benchmark JSON report (tests/perf), so that the committed timing figures under
`results/perf/` are generated from the measurements, never typed by hand.

The page states the machine (from the report's machine_info, including the torch threads and
load average that tests/perf/conftest.py adds), the commit, every benchmark's median / mean /
min with its unit of work, and the adapter-step vs full-step ratio per backbone size.
"""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from bench.errors import DataFormatError, UsageError
from bench.io import atomic_write_text

# what one call of each benchmark does: name prefix -> (description, extra_info key, unit)
UNITS = {
    "test_prompt_collation": ("prompt collation ({prompts_per_call} prompts, sequential and direct mix)",
                              "prompts_per_call", "prompt"),
    "test_constrained_beam_search": ("constrained beam search, {beams} beams, {users_per_call} users, {task}",
                                     "users_per_call", "user"),
    "test_sasrec_epoch": ("SASRec, one training epoch ({users} users)", None, None),
    "test_evaluator_10k_lists": ("evaluator, {lists} top-10 lists, {task}", "lists", None),
    "test_training_step": ("one optimizer step, {batch} prompts ({tokens} tokens), {mode}, {size} backbone",
                           None, None),
}


def _fmt_s(x: float) -> str:
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def load_report(path: Path) -> dict:
    try:
        rep = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (write one with: pytest tests/perf --benchmark-only "
                         f"--benchmark-json {path})") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path, f"not JSON ({e.msg})", line=e.lineno) from None
    if not isinstance(rep, dict) or "benchmarks" not in rep or "machine_info" not in rep:
        raise DataFormatError(path, "not a pytest-benchmark report (no 'benchmarks' / 'machine_info')")
    return rep


def _describe(b: dict) -> tuple[str, str]:
    base = b["name"].split("[")[0]
    info = (b.get("params") or {}) | b.get("extra_info", {})
    desc, key, unit = UNITS.get(base, (b["name"], None, None))
    try:
        desc = desc.format(**info)
    except KeyError:
        desc = b["name"]
    per = ""
    if key and unit and info.get(key):
        per_s = b["stats"]["median"] / info[key]
        per = f"{_fmt_s(per_s)}/{unit} (~{1 / per_s:,.0f} {unit}s/s)"
    return desc, per


def step_ratios(rep: dict) -> list[list]:
    """Adapter step vs full fine-tuning step on the same batch, per backbone size."""
    steps = {}
    for b in rep["benchmarks"]:
        if b["name"].startswith("test_training_step"):
            info = (b.get("params") or {}) | b.get("extra_info", {})
            steps[(info["mode"], info["size"])] = b
    rows = []
    for size in sorted({s for _, s in steps}):
        a, f = steps.get(("adapters", size)), steps.get(("full", size))
        if a is None or f is None:
            continue
        ai, fi = a["extra_info"], f["extra_info"]
        rows.append([f"`{size}`",
                     f"{ai['trainable_params'] / 1e6:.2f}M / {ai['total_params'] / 1e6:.2f}M "
                     f"({100 * ai['trainable_params'] / ai['total_params']:.1f}%)",
                     f"{fi['trainable_params'] / 1e6:.2f}M",
                     _fmt_s(a["stats"]["median"]), _fmt_s(f["stats"]["median"]),
                     f"**{a['stats']['median'] / f['stats']['median']:.2f}**",
                     f"{a['stats']['mean'] / f['stats']['mean']:.2f}",
                     f"{a['stats']['min'] / f['stats']['min']:.2f}"])
    return rows


def run_table(per_run: dict) -> str:
    """The (task/model) runs a benchmark of a whole `bench run` made, from its extra_info."""
    rows = []
    for key, r in per_run.items():
        rows.append([key, f"{r['time_per_epoch_s']:.2f}", r["epochs"],
                     *(f"{r[k]:.1f}" if r.get(k) is not None else "" for k in ("fit_time_s", "eval_time_s")),
                     r.get("concurrent_jobs", "")])
    return tabulate(
        rows,
        tablefmt="github",
        disable_numparse=True,
        headers=["task/model", "s/epoch", "epochs", "training s", "evaluation s", "jobs side by side"],
    )


def render(rep: dict, source: str, note: str = "") -> str:
    mi, ci = rep["machine_info"], rep.get("commit_info", {})
    cpu = mi.get("cpu", {})
    extra = mi.get("bench", {})  # added by tests/perf/conftest.py (absent from older reports)
    # a benchmark may say how its report is made (the slow ones need -m slow)
    made_by = next(
        (b["extra_info"]["command"] for b in rep["benchmarks"] if (b.get("extra_info") or {}).get("command")),
        "pytest tests/perf --benchmark-only --benchmark-json FILE",
    ).replace("FILE", source)
    lines = [
        f"# Timing report `{Path(source).name}`",
        "",
        f"Generated by `python -m bench perf-report {source}` from the pytest-benchmark report "
        "(do not edit by hand). The report itself was written by",
        "",
        "```bash",
        made_by,
        "```",
        "",
        f"- date: {rep.get('datetime', '?')}; commit {ci.get('id', '?')[:12]}"
        + (" (uncommitted changes)" if ci.get("dirty") else ""),
        f"- machine: {cpu.get('brand_raw', mi.get('processor') or '?')}, {cpu.get('count', '?')} cores, "
        f"{mi.get('system', '')} {mi.get('release', '')}; Python {mi.get('python_version', '?')}",
    ]
    if extra:
        lines.append(f"- torch {extra.get('torch', '?')}, {extra.get('torch_threads', '?')} thread(s) per process "
                     f"(OMP_NUM_THREADS={extra.get('omp_num_threads') or 'unset'}), "
                     f"CUDA: {extra.get('cuda') or 'none'}; load average at start {extra.get('loadavg', '?')}")
    if note:
        lines.append(f"- note: {note}")
    lines += [
        "",
        "Single rounds are noisy on a shared machine: compare medians, and only reports from the same "
        "machine. Compare your own report with this one:",
        "",
        "```bash",
        f"pytest-benchmark compare {source} mine.json --group-by=name --columns=min,median,mean",
        "```",
    ]
    ratios = step_ratios(rep)
    if ratios:
        lines += [
            "",
            "## Adapter step vs full fine-tuning step",
            "",
            "One optimizer step (forward, backward, gradient clipping, AdamW) on the same batch, same network "
            "shape: VIP5 with adapters on a frozen backbone vs every parameter trained (`train_mode=full`). "
            "The backward pass still runs through the whole frozen network to reach the adapters, so "
            "adapters save only the frozen weights' gradients and optimizer update.",
            "",
            tabulate(ratios, tablefmt="github", headers=[
                "backbone", "adapters: trainable / total (share)", "full: trainable", "adapters step (median)",
                "full step (median)", "adapters / full (median)", "(mean)", "(min)"]),
        ]
    for b in rep["benchmarks"]:
        per_run = (b.get("extra_info") or {}).get("per_run")
        if per_run:
            lines += ["", f"## Runs inside `{b['name']}`", "", run_table(per_run)]
    rows = []
    for b in rep["benchmarks"]:
        desc, per = _describe(b)
        s = b["stats"]
        rows.append([desc, _fmt_s(s["median"]), _fmt_s(s["mean"]), _fmt_s(s["min"]), s["rounds"], per])
    lines += ["", "## Every benchmark", "",
              tabulate(rows, tablefmt="github", headers=["benchmark (one call)", "median", "mean", "min", "rounds",
                                                          "per unit (median)"]), ""]
    return "\n".join(lines)


def cmd_perf_report(args) -> int:
    rep = load_report(Path(args.report))
    text = render(rep, args.report, args.note or "")
    if args.out:
        atomic_write_text(Path(args.out), text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0
