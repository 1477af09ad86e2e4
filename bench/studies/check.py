"""`bench check`: compare run records with committed reference records; non-zero exit on a regression.

Records are matched on (dataset, task, model+tag, prompt) and compared metric by metric on
the mean over the seeds both sides have. Direction-aware: HR, NDCG, BLEU, ROUGE must not
drop, RMSE, MAE and invalid_rate must not rise, by more than the metric's tolerance

    allowed = scale × max(abs, rel × |reference|, 1/n for ranking metrics)

(n = test queries; one query changing its outcome moves HR by 1/n, which on a small test set
is more than any fixed tolerance would allow). Moving the other way by more than that is
reported as ``better`` (not a failure: update the reference with ``--write-reference``).
Efficiency figures (time, memory) depend on the machine and are not checked.

Modes:
  bench check                          records in --results-dir (./results) vs --reference (./results/reference)
  bench check --rerun                  re-run every reference configuration (same model, task, seeds, config,
                                       tag, indexing) into a fresh directory, then compare
  bench check --quick                  CI: a few fast models on a generated 80-user dataset (`ci-tiny`), compared
                                       with the committed ci-tiny reference records, tolerances doubled (about a
                                       minute on 2 CPUs)
  ... --write-reference                accept the current records as the new reference (no comparison)
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.errors import UsageError
from bench.metrics import HIGHER_IS_BETTER, RANK_METRICS
from bench.tasks import DIRECT, EXPLANATION, SEQUENTIAL


@dataclass(frozen=True)
class Tolerance:
    abs: float
    rel: float
    per_query: bool = False  # also allow one query's worth of change (1/n)


# Why these numbers: ranking metrics are fractions in [0, 1] whose seed-to-seed noise on the
# synthetic data is about 0.005-0.01; text metrics are percentages where ±0.25 BLEU / ±0.5 ROUGE
# is within decoding noise of one changed sentence on a few hundred records; ratings are on a
# 1-5 scale.
TOLERANCES: dict[str, Tolerance] = {
    **{m: Tolerance(0.005, 0.05, per_query=True) for m in RANK_METRICS},
    "bleu-4": Tolerance(0.25, 0.05),
    "rouge-1": Tolerance(0.5, 0.03),
    "rouge-2": Tolerance(0.5, 0.03),
    "rouge-l": Tolerance(0.5, 0.03),
    "rmse": Tolerance(0.02, 0.03),
    "mae": Tolerance(0.02, 0.03),
    "invalid_rate": Tolerance(0.01, 0.0),
}

QUICK_DATASET = "ci-tiny"
QUICK_DATA = {"n_users": 80, "n_items": 150, "seed": 0}
QUICK_SEEDS = [1]
# ci-tiny has 80 users and ~270 review records: a trained model can move by a user or two between
# CPUs (float summation order changes its training path), so --quick doubles every tolerance; a
# broken model moves by far more (a crippled VBPR loses 0.17 HR@10 there)
QUICK_TOL_SCALE = 2.0
# (task, model, overrides): a few fast models, each clearly better than chance on ci-tiny, so a
# regression in data, splits, candidates, evaluation or these models shows up
QUICK_RUNS = [
    (SEQUENTIAL, "pop", {}),
    (SEQUENTIAL, "sasrec", {"epochs": "40", "dropout": "0.2"}),
    (DIRECT, "pop", {}),
    (DIRECT, "vbpr", {"epochs": "10"}),
    (EXPLANATION, "explain_ref", {}),
    (EXPLANATION, "nrt", {"epochs": "5"}),
]

STATUS_ORDER = {"REGRESSION": 0, "MISSING": 1, "NOT COMPARABLE": 2, "better": 3, "new": 4, "ok": 5}


def allowed(metric: str, ref: float, n: int | None, scale: float = 1.0) -> float:
    tol = TOLERANCES[metric]
    parts = [tol.abs, tol.rel * abs(ref)]
    if tol.per_query and n:
        parts.append(1.0 / n)
    return scale * max(parts)


def _key(r: dict) -> tuple:
    return (r["dataset"], r["task"], r["model"] + (f"+{r['tag']}" if r.get("tag") else ""), r.get("prompt") or "-")


@dataclass
class Diff:
    key: tuple
    metric: str
    ref: float | None
    cur: float | None
    allowed: float | None
    status: str
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("REGRESSION", "MISSING", "NOT COMPARABLE")


def _mean(recs: list[dict], metric: str, seeds: set[int]) -> float | None:
    vals = [r["metrics"][metric] for r in recs if r["seed"] in seeds and metric in r["metrics"]]
    return float(np.mean(vals)) if vals else None


def compare(reference: list[dict], current: list[dict], scale: float = 1.0) -> list[Diff]:
    ref_groups, cur_groups = defaultdict(list), defaultdict(list)
    for r in reference:
        ref_groups[_key(r)].append(r)
    for r in current:
        cur_groups[_key(r)].append(r)
    diffs = []
    for key, refs in sorted(ref_groups.items()):
        curs = cur_groups.get(key)
        if not curs:
            diffs.append(Diff(key, "-", None, None, None, "MISSING", "no current records"))
            continue
        ri, ci = {r.get("indexing") for r in refs}, {r.get("indexing") for r in curs}
        if ri != ci:
            diffs.append(Diff(key, "-", None, None, None, "NOT COMPARABLE", f"indexing {ri} vs {ci}"))
            continue
        common = {r["seed"] for r in refs} & {r["seed"] for r in curs}
        note = ""
        if not common:
            note = "no common seeds: all seeds' means"
        ref_seeds = common or {r["seed"] for r in refs}
        cur_seeds = common or {r["seed"] for r in curs}
        n = next((r.get("per_query", {}).get("n") for r in curs if r.get("per_query")), None)
        for metric in sorted(m for m in refs[0]["metrics"] if m in TOLERANCES):
            ref, cur = _mean(refs, metric, ref_seeds), _mean(curs, metric, cur_seeds)
            if ref is None:
                continue
            if cur is None:
                diffs.append(Diff(key, metric, ref, None, None, "MISSING", "metric absent"))
                continue
            tol = allowed(metric, ref, n, scale)
            gain = (cur - ref) if HIGHER_IS_BETTER[metric] else (ref - cur)
            status = "REGRESSION" if gain < -tol - 1e-12 else "better" if gain > tol + 1e-12 else "ok"
            diffs.append(Diff(key, metric, ref, cur, tol, status, note))
    for key in sorted(set(cur_groups) - set(ref_groups)):
        diffs.append(Diff(key, "-", None, None, None, "new", "not in the reference"))
    return diffs


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def diff_table(diffs: list[Diff], show_all: bool = False) -> str:
    shown = diffs if show_all or len(diffs) <= 40 else [d for d in diffs if d.status != "ok"]
    shown = sorted(shown, key=lambda d: (STATUS_ORDER.get(d.status, 9), d.key, d.metric))
    rows = []
    for d in shown:
        delta = "" if d.ref is None or d.cur is None else f"{d.cur - d.ref:+.4f}"
        direction = "" if d.metric not in HIGHER_IS_BETTER else ("higher" if HIGHER_IS_BETTER[d.metric] else "lower")
        rows.append([*d.key, d.metric, direction, _fmt(d.ref), _fmt(d.cur), delta,
                     "" if d.allowed is None else f"±{d.allowed:.4f}", d.status, d.note])
    table = tabulate(
        rows,
        headers=[
            "dataset",
            "task",
            "run",
            "prompt",
            "metric",
            "better",
            "reference",
            "current",
            "delta",
            "allowed",
            "status",
            "note",
        ],
        tablefmt="github",
        disable_numparse=True,
    )
    hidden = len(diffs) - len(shown)
    return table + (f"\n({hidden} metric(s) within tolerance not shown; --all shows them)" if hidden else "")


# ------------------------------------------------------------------------------------ producing records


def _config_overrides(rec: dict) -> dict[str, str]:
    """The `--set` values that reproduce a record's resolved config (keys that differ from the defaults)."""
    import dataclasses

    from bench.registry import get_model

    cls = get_model(rec["model"]).config
    default = dataclasses.asdict(cls())
    out = {}
    for k, v in rec.get("config", {}).items():
        if k not in default:
            print(f"note: {rec['model']}: config key {k!r} no longer exists; ignored", file=sys.stderr)
            continue
        if v == default[k] or (isinstance(v, list) and tuple(v) == default[k]):
            continue
        out[k] = "none" if v is None else str(v).lower() if isinstance(v, bool) else \
            ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
    return out


def _ensure_dataset(dataset: str, data_root: str | None, manifest: dict | None) -> None:
    """A generated dataset that is missing (e.g. ci-tiny) is regenerated from its recorded provenance."""
    from bench.data import data_root as root_of
    from bench.data.synthetic import generate

    if (root_of(data_root) / dataset / "manifest.json").exists() or not manifest:
        return
    prov = manifest.get("provenance") or {}
    if prov.get("generator") != "bench.data.synthetic":
        return
    kw = {k: prov[k] for k in ("n_users", "n_items", "image_size") if k in prov}
    print(
        f"generating dataset {dataset!r} from its recorded provenance {kw} (seed "
        f"{manifest.get('seed')})", file=sys.stderr
    )
    generate(root_of(data_root), name=dataset, seed=manifest.get("seed", 2022), **kw)


def rerun(reference: list[dict], *, results_dir: str, data_root: str | None, device: str) -> int:
    """Run every reference configuration again; returns the number of failed runs."""
    from bench.run.runner import execute, plan_run

    groups = defaultdict(list)
    for r in reference:
        groups[(r["dataset"], r["task"], r["model"], r.get("tag"), r.get("indexing") or "random")].append(r)
    failed = 0
    for n, ((ds, task, model, tag, indexing), recs) in enumerate(sorted(groups.items(), key=str), 1):
        _ensure_dataset(ds, data_root, recs[0].get("dataset_manifest"))
        seeds = sorted({r["seed"] for r in recs})
        print(f"\n##### rerun {n}/{len(groups)}: {model}{'+' + tag if tag else ''} · {task} · {ds} · seeds {seeds}",
              file=sys.stderr, flush=True)
        plan = plan_run(task=task, dataset=ds, models=[model], seeds=seeds, overrides=_config_overrides(recs[0]),
                        device=device, indexing=indexing, data_root_=data_root, results_dir=results_dir, tag=tag)
        failed += sum(1 for res in execute(plan, command="python -m bench check --rerun") if res.error)
    return failed


def quick_runs(*, results_dir: str, data_root: str | None, device: str) -> int:
    from bench.data import data_root as root_of
    from bench.data.synthetic import generate
    from bench.run.runner import execute, plan_run

    if not (root_of(data_root) / QUICK_DATASET / "manifest.json").exists():
        generate(root_of(data_root), name=QUICK_DATASET, **QUICK_DATA)
    failed = 0
    for n, (task, model, overrides) in enumerate(QUICK_RUNS, 1):
        print(f"\n##### quick {n}/{len(QUICK_RUNS)}: {model} · {task}", file=sys.stderr, flush=True)
        plan = plan_run(task=task, dataset=QUICK_DATASET, models=[model], seeds=QUICK_SEEDS, overrides=overrides,
                        device=device, data_root_=data_root, results_dir=results_dir)
        failed += sum(1 for res in execute(plan, command="python -m bench check --quick") if res.error)
    return failed


def write_reference(current: list[dict], reference_dir: Path, datasets: list[str]) -> int:
    """Make `current` the reference for `datasets`: write its records, drop the datasets' other reference records."""
    from bench.results import load_records, write_record

    keep = set()
    for r in current:
        rec = {k: v for k, v in r.items() if k != "_path"}
        keep.add(str(write_record(reference_dir, rec).resolve()))
    removed = 0
    for ds in datasets:
        for old in load_records(reference_dir, ds):
            if str(Path(old["_path"]).resolve()) not in keep:
                Path(old["_path"]).unlink()
                removed += 1
    print(f"reference updated: {len(keep)} record(s) written to {reference_dir}/runs/"
          + (f", {removed} stale record(s) removed" if removed else ""))
    return 0


# ------------------------------------------------------------------------------------ command


def cmd_check(args) -> int:
    from bench.results import load_records

    if args.quick and args.rerun:
        raise UsageError("--quick and --rerun exclude each other")
    if args.quick and args.dataset not in (None, QUICK_DATASET):
        raise UsageError(f"--quick checks the generated {QUICK_DATASET!r} dataset; drop --dataset")
    scale = args.tol_scale if args.tol_scale is not None else QUICK_TOL_SCALE if args.quick else 1.0
    if scale <= 0:
        raise UsageError(f"--tol-scale {scale}: must be positive")
    ref_dir = Path(args.reference)
    dataset = QUICK_DATASET if args.quick else args.dataset
    reference = load_records(ref_dir, dataset) if dataset else load_records(ref_dir)
    if not reference and not args.write_reference:
        raise UsageError(
            f"no reference records under {ref_dir / 'runs'}"
            + (f" for dataset {dataset!r}" if dataset else "")
            + ("; create them with --write-reference" if args.quick else "")
        )
    with ExitStack() as stack:
        def tmp(prefix: str) -> str:
            return stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix))

        results_dir = args.results_dir or (tmp("bench-check-results-") if args.quick or args.rerun else "results")
        failed_runs = 0
        if args.quick:
            data_root = args.data_root or tmp("bench-check-data-")
            failed_runs = quick_runs(results_dir=results_dir, data_root=data_root, device=args.device)
        elif args.rerun:
            failed_runs = rerun(reference, results_dir=results_dir, data_root=args.data_root, device=args.device)
        if dataset:
            current = load_records(results_dir, dataset)
        else:  # the datasets the current records cover (others are not being checked)
            current = load_records(results_dir)
            covered = {r["dataset"] for r in current}
            reference = [r for r in reference if r["dataset"] in covered]
        if args.write_reference:
            if failed_runs:
                print(f"{failed_runs} run(s) failed: the reference is left as it was", file=sys.stderr)
                return 1
            return write_reference(
                current, ref_dir, sorted({r["dataset"] for r in current} | ({dataset} if dataset else set()))
            )
        if not current:
            raise UsageError(f"no records to check under {Path(results_dir) / 'runs'}"
                             + (f" for dataset {dataset!r}" if dataset else ""))
        diffs = compare(reference, current, scale)
    bad = [d for d in diffs if d.failed]
    print(f"bench check: {results_dir} vs reference {ref_dir}  (allowed = {scale:g} × max(abs, rel × |ref|"
          ", 1/n queries for HR/NDCG); see bench/studies/check.py TOLERANCES)\n")
    print(diff_table(diffs, args.all))
    counts = {s: sum(d.status == s for d in diffs) for s in STATUS_ORDER}
    print("\n" + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if failed_runs:
        print(f"{failed_runs} run(s) failed")
    if bad or failed_runs:
        print("FAILED: " + (f"{len(bad)} regression(s)/missing result(s)" if bad else "runs failed"))
        return 1
    print("OK: no regression beyond the tolerances")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="compare records with the committed reference; exit 1 on a regression")
    p.add_argument("--reference", default="results/reference", help="reference records (default: results/reference)")
    p.add_argument("--results-dir", default=None,
                   help="records to check (default: ./results; with --rerun/--quick a fresh temporary directory)")
    p.add_argument(
        "--dataset", default=None, help="check one dataset (default: every dataset the current records cover)"
    )
    p.add_argument("--rerun", action="store_true", help="re-run every reference configuration first")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"CI: run {len(QUICK_RUNS)} fast models on a generated 80-user dataset ({QUICK_DATASET}) and check them",
    )
    p.add_argument("--write-reference", action="store_true", help="accept the current records as the new reference")
    p.add_argument("--tol-scale", type=float, default=None,
                   help=f"multiply every tolerance (default 1; {QUICK_TOL_SCALE:g} with --quick)")
    p.add_argument("--all", action="store_true", help="show every compared metric, not only those out of tolerance")
    p.add_argument("--device", default="cpu", help="device for --rerun/--quick runs (default: cpu)")
    p.add_argument(
        "--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data; --quick: temporary)"
    )

