"""`bench reproduce`: regenerate everything under results/ for one dataset, in one command.

Steps: (1) every task x every registered model x every seed (`bench run`), (2) the ablation
studies behind Figures 3-7 (`bench ablate`, VIP5; the placement study also feeds Table 5),
(3) Tables 2-5 (`bench tables`), (4) the HTML report (`bench report`), (5) the new records
become the reference that `bench check` compares against (results/reference/).
A failed run is shown in the tables as missing and makes the exit code 1; the other steps go on.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def _step(n: int, total: int, what: str) -> None:
    print(f"\n######## reproduce step {n}/{total}: {what}", file=sys.stderr, flush=True)


def cmd_reproduce(args) -> int:
    from bench.config import parse_sets
    from bench.report.html import build_report
    from bench.report.tables import build_tables, write_tables
    from bench.results import load_records
    from bench.run.plan import model_sets
    from bench.run.runner import execute, plan_run
    from bench.studies.ablate import STUDIES, check_study_model, parse_studies, run_study
    from bench.studies.check import write_reference

    studies = [] if args.studies == "none" else parse_studies(args.studies)
    sets = parse_sets(args.sets)
    ablation_seeds = args.ablation_seeds or args.seeds[:1]
    # every name is checked before anything runs
    for study in studies:
        check_study_model(study, args.ablation_model)
    plan = plan_run(
        task=args.task,
        dataset=args.dataset,
        models=args.models,
        seeds=args.seeds,
        overrides=sets,
        epochs=args.epochs,
        device=args.device,
        indexing=args.indexing,
        data_root_=args.data_root,
        results_dir=args.results_dir,
        parallel=args.jobs,
    )
    command = "python -m bench " + shlex.join(sys.argv[1:])
    total, failures = 5, 0
    results = Path(args.results_dir)

    _step(1, total, f"runs: {sum(1 for _ in plan.jobs())} (task, model, seed) jobs on {args.dataset}")
    if sets:
        print("settings (--set): " + ", ".join(f"{k}={v}" for k, v in sets.items()))
    failures += sum(1 for r in execute(plan, command=command) if r.error)

    _step(2, total, f"ablations: {', '.join(studies) or 'none'} (seeds {ablation_seeds})")
    for study in studies:
        # the VIP5 keys of --set, less the ones this study varies itself
        keep = {k: v for k, v in model_sets(args.ablation_model, sets).items() if k not in STUDIES[study].keys}
        out = run_study(
            study,
            dataset=args.dataset,
            task=args.task,
            model=args.ablation_model,
            seeds=ablation_seeds,
            epochs=args.epochs,
            sets=keep,
            device=args.device,
            indexing=args.indexing,
            data_root=args.data_root,
            results_dir=args.results_dir,
            out=str(results / "ablations"),
            command=command,
            parallel=args.jobs,
        )
        failures += out.failures

    _step(3, total, "tables")
    records = load_records(results, args.dataset)
    tables = build_tables(records, args.dataset)
    paths = write_tables(tables, results / "tables" / args.dataset)
    print(f"{len(tables)} table(s), {len(paths)} files in {results / 'tables' / args.dataset}/")

    _step(4, total, "report")
    from bench.io import atomic_write_text

    atomic_write_text(results / "report.html", build_report(results))
    print(f"report: {results / 'report.html'}")

    _step(5, total, "reference records for `bench check`")
    write_reference(records, results / "reference", [args.dataset])
    if failures:
        print(f"\n{failures} run(s) failed: see the log above; their rows are missing from the tables")
    return 1 if failures else 0


def add_parser(sub, ints, csv) -> None:
    p = sub.add_parser(
        "reproduce", help="regenerate results/: every run, the ablations, the tables, the report, the reference"
    )
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--task", default=None, help="one task (default: every task the dataset has)")
    p.add_argument("--models", type=csv, default=None, help="comma-separated models (default: every registered model)")
    p.add_argument("--ablation-model", default="vip5", help="the model the ablation studies vary (default: vip5)")
    p.add_argument("--seeds", type=ints, default=[1, 2, 3], help="seeds of the main runs (default: 1,2,3)")
    p.add_argument(
        "--ablation-seeds", type=ints, default=None, help="seeds of the ablation runs (default: the first seed)"
    )
    p.add_argument("--studies", default="all", help="ablation studies: comma-separated, 'all' (default) or 'none'")
    p.add_argument(
        "--epochs", type=int, default=None, help="maximum epochs for every model (default: each model's own)"
    )
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE",
                   help="config override for every run; MODEL.KEY=VALUE for one model")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--jobs",
        default="auto",
        help="runs side by side (as bench run --jobs), main runs and ablations alike, "
        "except the placement study (Table 5's timings): one at a time",
    )
    p.add_argument("--indexing", default="random")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data)")
