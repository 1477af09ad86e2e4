"""Command line: ``python -m bench COMMAND ...`` (run, tune, features, ls, data, tables, ablate,
check, report, reproduce, perf-report, efficiency)."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import traceback

from bench.errors import BenchError


def _csv(s: str) -> list[str]:
    return [p.strip() for p in s.split(",") if p.strip()]


def _ints(s: str) -> list[int]:
    try:
        return [int(p) for p in _csv(s)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _duration(s: str) -> float:
    """'90s', '30m', '2h', '1h30m' (a bare number: seconds) -> seconds."""
    import re

    text = s.strip().lower()
    parts = re.fullmatch(r"(?:\d+(?:\.\d+)?[hms])+", text) and re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    try:
        return float(text) if not parts else sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 30m, 2h or 1h30m, got {s!r}") from None


def _add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description="vip5-bench: VIP5 and its baselines, one evaluator."
    )
    ap.add_argument(
        "--verbose", action="store_true", help="tracebacks for expected errors too (bad input, missing data)"
    )
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")

    _add_run_parser(sub)
    _add_tune_parser(sub)

    from bench.data.features import add_parser as add_features_parser

    add_features_parser(sub)

    from bench.report import curves, tables
    from bench.report import html as report_html
    from bench.studies import ablate, check, diagnose, efficiency, reproduce

    tables.add_parser(sub)
    curves.add_parser(sub, _csv)
    ablate.add_parser(sub, _ints)
    check.add_parser(sub)
    report_html.add_parser(sub)
    reproduce.add_parser(sub, _ints, _csv)
    efficiency.add_parser(sub)
    diagnose.add_parser(sub, _csv, _add_data_root)

    perf = sub.add_parser("perf-report", help="a readable page (Markdown) from a pytest-benchmark JSON report")
    perf.add_argument("report", help="the JSON written by: pytest tests/perf --benchmark-only --benchmark-json FILE")
    perf.add_argument("--out", default=None, help="write the page here (atomic); default: print it")
    perf.add_argument("--note", default=None, help="one line about the conditions of the run, printed with the machine")

    sub.add_parser("ls", help="list models (with their tasks), tasks and datasets").add_argument(
        "--data-root", default=None
    )

    from bench.data.cli import add_parser as add_data_parser

    add_data_parser(sub, _add_data_root)
    for p in _subparsers(ap):  # `--verbose` after the command, too
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return ap


def _add_run_parser(sub) -> None:
    run = sub.add_parser("run", help="train and evaluate models; print the comparison table")
    run.add_argument("--task", default=None, help="sequential, direct or explanation (default: every task)")
    run.add_argument("--dataset", default="synthetic", help="dataset name (default: the embedded 'synthetic')")
    run.add_argument(
        "--models", type=_csv, default=None, help="comma-separated model names (default: all for the task)"
    )
    run.add_argument("--seeds", type=_ints, default=[2022], help="comma-separated seeds (default: 2022)")
    run.add_argument("--epochs", type=int, default=None, help="maximum epochs (overrides each model's config)")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    run.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE",
                     help="config override (MODEL.KEY=VALUE: one model only); repeatable")
    run.add_argument("--indexing", default="random", help="item indexing: random (leak-free) or sequential (P5's)")
    run.add_argument("--results-dir", default="results", help="where run records go (default: ./results)")
    run.add_argument("--tag", default=None, help="name for this configuration variant in records and tables")
    run.add_argument(
        "--tuned", action="store_true", help="apply the hyper-parameters `bench tune` chose (results/tuned/)"
    )
    run.add_argument("--jobs", default="auto",
                     help="jobs trained side by side, each in its own process with its share of the cores "
                          "(default auto: one per core, at most 4, on CPU; 1 on CUDA)")
    run.add_argument("--time-limit", type=_duration, default=None, metavar="DURATION",
                     help="per job: training stops there (e.g. 90s, 30m, 2h, 1h30m), the kept checkpoint is "
                          "evaluated and the row is flagged time-capped; the same command continues the training")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan, with each job's estimated time (from an earlier run here, or from "
                          "timing its first batches), and stop: nothing is trained")
    run.add_argument("--rerun", action="store_true",
                     help="train every job again, even those whose records exist for the same config, data and code "
                          "(default: keep those and train the rest)")
    _add_data_root(run)


def _add_tune_parser(sub) -> None:
    tune = sub.add_parser("tune", help="grid search on the validation split; stores the best config")
    tune.add_argument("--model", required=True)
    tune.add_argument("--task", required=True)
    tune.add_argument("--dataset", default="synthetic")
    tune.add_argument(
        "--grid", action="append", metavar="KEY=V1,V2", help="values to try (default: the model's TUNE_GRID)"
    )
    tune.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="fixed config override")
    tune.add_argument("--seed", type=int, default=2022)
    tune.add_argument("--epochs", type=int, default=None)
    tune.add_argument("--device", default="auto")
    tune.add_argument("--indexing", default="random")
    tune.add_argument("--results-dir", default="results")
    _add_data_root(tune)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser below `parser` (``data show`` included)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in dict.fromkeys(action.choices.values()):
                found += [p, *_subparsers(p)]
    return found


def cmd_run(args) -> int:
    from bench import distributed
    from bench.config import parse_sets
    from bench.run.runner import dry_run, execute, plan_run

    plan = plan_run(
        task=args.task, dataset=args.dataset, models=args.models, seeds=args.seeds, overrides=parse_sets(args.sets),
        epochs=args.epochs, device=args.device, indexing=args.indexing, data_root_=args.data_root,
        results_dir=args.results_dir, tag=args.tag, tuned=args.tuned, parallel=args.jobs,
        skip_existing=not args.rerun, verbose=args.verbose, time_limit_s=args.time_limit,
    )
    if args.dry_run:
        dry_run(plan)
        return 0
    results = execute(plan, command="python -m bench " + shlex.join(sys.argv[1:]))
    if not distributed.is_main():  # under torchrun rank 0 alone reports
        return 0
    _summary(plan, results)
    if results and all(r.skipped for r in results):
        return 2  # nothing could start: each row above says what the dataset lacks and the fix
    return 1 if any(r.error for r in results) else 0


def _summary(plan, results) -> None:
    """The comparison table per task (kept and new records; failed and not-started jobs as rows), then
    one line per job left out: what it lacks and the command that fixes it, or that its record was kept."""
    from bench.report.run_table import comparison_table
    from bench.report.tables import timing_note

    for task in plan.tasks:
        recs = [r for res in results if res.task == task for r in res.records]
        fails = [(res.model, res.error) for res in results if res.task == task and res.error]
        fails += [(res.model, "not started: " + res.skipped.split(";")[0]) for res in results
                  if res.task == task and res.skipped]
        print(f"\n## {task} · {plan.dataset} · indexing={plan.indexing} · test split\n")
        print(comparison_table(recs, task, fails))
        timing = timing_note(recs) if recs else None  # no records (every job failed): no timing line
        if timing:
            print(f"\n{timing}")
    blocked = [r for r in results if r.skipped]
    if blocked:
        print()
        for r in blocked:
            print(f"not started: {r.model} · {r.task} · seed {r.seed}: {r.skipped}")
    reused = [r for r in results if r.reused]
    if reused:
        jobs = ", ".join(f"{r.model}·{r.task}·{r.seed}" for r in reused)
        print(f"\nskipped {len(reused)} job(s) whose records exist for the same config, data and code ({jobs}); "
              "use --rerun to train them again")
    print(f"\nrecords: {plan.results_dir}/runs/{plan.dataset}/")


def cmd_ls(args) -> int:
    from tabulate import tabulate

    from bench.data import data_root, known_datasets
    from bench.data.store import read_manifest
    from bench.registry import all_models, all_tasks

    tasks = all_tasks()
    rows = [[n, ", ".join(t for t in tasks if t in s.tasks), s.summary] for n, s in all_models().items()]
    print("Models\n" + tabulate(rows, headers=["model", "tasks", "description"]))
    print("\nTasks: " + ", ".join(tasks))
    drows = []
    for name in known_datasets(args.data_root):
        path = data_root(args.data_root) / name
        if (path / "manifest.json").exists():
            m = read_manifest(path)
            c = m["counts"]
            drows.append([name, c["users"], c["items"], c["interactions"], c["reviews"], ", ".join(m["tasks"])])
        else:
            drows.append([name, "", "", "", "", "(embedded; generated on first use)"])
    print(f"\nDatasets (data root: {data_root(args.data_root)})\n"
          + tabulate(drows, headers=["dataset", "users", "items", "interactions", "reviews", "tasks"]))
    return 0


# subcommands whose modules are imported only when used (torch, open_clip, matplotlib are slow to load)
LAZY_COMMANDS = {
    "data": "bench.data.cli:cmd_data",
    "features": "bench.data.features:cmd_features",
    "tables": "bench.report.tables:cmd_tables",
    "curves": "bench.report.curves:cmd_curves",
    "ablate": "bench.studies.ablate:cmd_ablate",
    "check": "bench.studies.check:cmd_check",
    "report": "bench.report.html:cmd_report",
    "reproduce": "bench.studies.reproduce:cmd_reproduce",
    "perf-report": "bench.report.perf:cmd_perf_report",
    "efficiency": "bench.studies.efficiency:cmd_efficiency",
    "diagnose": "bench.studies.diagnose:cmd_diagnose",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv == ["--verbose"]:
        argv = [*argv, "run"]  # `python -m bench` alone runs the main job
    args = parser.parse_args(argv)
    try:
        code = _dispatch(parser, args)
        sys.stdout.flush()  # a closed pipe (`... | head`) surfaces here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader went away (`bench data show NAME | head`): stop quietly; stdout goes to /dev/null
        # so that the interpreter's own flush at exit does not complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except BenchError as e:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _dispatch(parser, args) -> int:
    if args.cmd == "run":
        return cmd_run(args)
    if args.cmd == "ls":
        return cmd_ls(args)
    if args.cmd == "tune":
        from bench.config import parse_sets
        from bench.studies.tune import tune

        return tune(model=args.model, task=args.task, dataset=args.dataset, grid_pairs=args.grid, seed=args.seed,
                    epochs=args.epochs, device=args.device, indexing=args.indexing, data_root=args.data_root,
                    results_dir=args.results_dir, sets=parse_sets(args.sets))
    if args.cmd in LAZY_COMMANDS:
        module, func = LAZY_COMMANDS[args.cmd].split(":")
        return getattr(importlib.import_module(module), func)(args)
    parser.print_help()
    return 2
