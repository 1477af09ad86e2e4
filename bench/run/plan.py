"""The plan of a `bench run`: every name and value checked before anything starts (`plan_run`),
the config each job will get (`job_config`: the model's settings for the dataset, `bench tune`'s
choice, then --set), and which jobs are not trained (`partition`: the dataset lacks what the model
needs, or the same job's records exist). `bench.run.runner` executes the plan."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

from bench import distributed
from bench.config import build_config, load_tuned
from bench.data import check_dataset_name, data_root
from bench.data.dataset import dataset_task_support
from bench.data.splits import INDEXINGS
from bench.errors import UnknownNameError, UsageError
from bench.registry import all_models, all_tasks, check_model_task, check_task, get_model, models_for_task
from bench.run import preflight
from bench.run.fingerprint import job_fingerprint
from bench.run.preflight import (
    dataset_has,
    describe,
    existing_records,
    load_existing,
    manifest_of,
    missing_data,
)
from bench.run.probe import Estimate, total_line


@dataclass
class RunPlan:
    dataset: str
    tasks: list[str]
    models: dict[str, list[str]]  # task -> models
    seeds: list[int]
    overrides: dict[str, str] = field(default_factory=dict)
    epochs: int | None = None
    device: str = "auto"
    indexing: str = "random"
    data_root: str | None = None
    results_dir: str = "results"
    tag: str | None = None
    tuned: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (task, model) -> bench tune's choice
    parallel: int = 1  # jobs trained side by side (each in its own process, its share of the cores)
    skip_existing: bool = False  # run-level resume: keep the records made with the same config, data and code
    verbose: bool = False  # tracebacks for expected errors too
    time_limit_s: float | None = None  # per job: training stops there (--time-limit; bench.progress.set_time_limit)

    def jobs(self):
        for task in self.tasks:
            for model in self.models[task]:
                for seed in self.seeds:
                    yield task, model, seed


def plan_run(
    *,
    task: str | None,
    dataset: str,
    models: list[str] | None,
    seeds: list[int],
    overrides: dict[str, str],
    epochs: int | None = None,
    device: str = "auto",
    indexing: str = "random",
    data_root_: str | None = None,
    results_dir: str = "results",
    tag: str | None = None,
    tuned: bool = False,
    parallel: int | str = 1,
    skip_existing: bool = False,
    verbose: bool = False,
    time_limit_s: float | None = None,
) -> RunPlan:
    """Check tasks, dataset, models, --set keys and values, counts, device and the results
    directory before any data is loaded or generated (one-line UsageError, exit code 2)."""
    if indexing not in INDEXINGS:
        raise UnknownNameError("indexing", indexing, INDEXINGS)
    if time_limit_s is not None and time_limit_s <= 0:
        raise UsageError(f"--time-limit {time_limit_s:g}s: must be positive; fix: e.g. --time-limit 30m")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise UsageError(f"--device {device!r}: expected auto, cpu or cuda[:N]")
    preflight.check_plain_name("--dataset", dataset, "beauty")
    preflight.check_tag(tag)
    check_dataset_name(dataset, data_root_)
    if task is not None:
        check_task(task)
        tasks = [task]
    else:
        tasks = list(all_tasks())
    models = list(dict.fromkeys(models)) if models else models  # a job named twice would wait on its own lock
    seeds = list(dict.fromkeys(seeds))
    for m in models or []:
        check_model_task(m, task) if task is not None else get_model(m)
    support = dataset_task_support(dataset, data_root_)  # task -> None, or why the dataset cannot have it
    available = [t for t, why in support.items() if why is None]
    if task is not None and task not in available:
        raise UsageError(f"--task {task}: dataset {dataset!r} has no {task!r} task ({support.get(task)}); "
                         f"it has: {', '.join(available)}")
    per_task = _models_per_task([t for t in tasks if t in available], models, dataset, available, overrides)
    preflight.check_counts(epochs, seeds)
    preflight.check_device(device)
    chosen = {}
    if tuned:
        chosen = {(t, m): load_tuned(results_dir, dataset, t, m, all_models()[m].config)
                  for t, ms in per_task.items() for m in ms}
    width = resolve_parallel(parallel, device)
    preflight.check_results_dir(results_dir)  # last: a bad name above fails without creating anything
    return RunPlan(dataset, list(per_task), per_task, seeds, overrides, epochs, device, indexing, data_root_,
                   results_dir, tag, chosen, width, skip_existing, verbose, time_limit_s)


def _models_per_task(tasks: list[str], models: list[str] | None, dataset: str, available: list[str],
                     overrides: dict[str, str]) -> dict[str, list[str]]:
    """Task -> the selected models that support it (tasks none of them supports are left out), with
    the checks that need the selection: torchrun-capable models, --set keys and values."""
    per_task = {t: [m for m in (models or models_for_task(t)) if t in all_models()[m].tasks] for t in tasks}
    per_task = {t: ms for t, ms in per_task.items() if ms}
    if not per_task:
        raise UsageError(
            f"none of the models {', '.join(models or [])} supports the tasks of {dataset!r}: {', '.join(available)}"
        )
    selected = {m for ms in per_task.values() for m in ms}
    if distributed.launched():
        single = sorted(m for m in selected if not all_models()[m].distributed)
        if single:
            able = sorted(n for n, s in all_models().items() if s.distributed)
            raise UsageError(
                f"under torchrun only {', '.join(able)} train (DistributedDataParallel); run "
                f"{', '.join(single)} without torchrun (python -m bench run ... --models {','.join(single)})"
            )
    for key in overrides:
        name, scoped, k = key.rpartition(".")
        if scoped:  # MODEL.KEY: that model only
            if name not in selected:
                raise UsageError(f"--set {key}: {name!r} is not among the selected models "
                                 f"({', '.join(sorted(selected))}); fix: select it with --models or drop the --set")
            if k not in all_models()[name].config.__dataclass_fields__:
                raise UsageError(f"--set {key}: {name} has no config key {k!r}; "
                                 f"known: {', '.join(sorted(all_models()[name].config.__dataclass_fields__))}")
        elif not any(key in all_models()[m].config.__dataclass_fields__ for m in selected):
            raise UsageError(
                f"--set {key}: no selected model has this config key (models: {', '.join(sorted(selected))})"
            )
    for m in selected:  # type-check and range-check now, not in the middle of the run
        build_config(all_models()[m].config, model_sets(m, overrides), strict=False)
    return per_task


def model_sets(model: str, overrides: dict[str, str]) -> dict[str, str]:
    """The --set values that reach `model`: every KEY=VALUE whose key its config has, and its own
    MODEL.KEY=VALUE, which win (e.g. P5's epochs apart from VIP5's: ``--set p5.epochs=16``)."""
    fields = all_models()[model].config.__dataclass_fields__
    plain = {k: v for k, v in overrides.items() if "." not in k and k in fields}
    return plain | {k.partition(".")[2]: v for k, v in overrides.items() if k.startswith(f"{model}.")}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_parallel(parallel: int | str, device: str) -> int:
    """`--jobs`: a count, or ``auto``: one job per core (at most 4) on CPU, one at a time on CUDA
    (jobs side by side on one GPU would blur each other's memory peaks) and under torchrun."""
    if parallel == "auto":
        from bench.train import resolve_device

        if distributed.launched() or device.startswith("cuda") or resolve_device(device) != "cpu":
            return 1
        return max(1, min(usable_cores(), 4))
    try:
        n = int(parallel)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise UsageError(f"--jobs {parallel}: expected a positive integer or auto")
    if n > 1 and distributed.launched():
        raise UsageError("--jobs: under torchrun the processes train one job together; leave --jobs at 1")
    return n


@dataclass
class JobResult:
    task: str
    model: str
    seed: int
    records: list[dict]
    error: str | None = None
    wall_s: float = 0.0
    skipped: str | None = None  # not started: what the dataset lacks and the fix (bench/run/preflight.py)
    reused: bool = False  # its records already existed for the same config, data and code (not trained again)


def _job_spec(plan: RunPlan, task: str, model: str, seed: int, command: str) -> dict:
    # explicit --set values win over the values `bench tune` chose, which win over the model's own
    # settings for this dataset (DATASET_DEFAULTS: e.g. VIP5's CPU budget on the embedded dataset)
    own = dataset_defaults(model, plan.dataset)
    overrides = own | plan.tuned.get((task, model), {}) | model_sets(model, plan.overrides)
    return {
        "model": model, "task": task, "dataset": plan.dataset, "seed": seed, "device": plan.device,
        "indexing": plan.indexing, "data_root": plan.data_root, "results_dir": plan.results_dir,
        "overrides": overrides, "epochs": plan.epochs, "tag": plan.tag, "command": command,
        "concurrent_jobs": plan.parallel, "dataset_defaults": own, "verbose": plan.verbose,
        "time_limit_s": plan.time_limit_s,
    }


def job_config(plan: RunPlan, task: str, model: str):
    """The config a job's worker will build (its overrides and --epochs), computed here in the parent."""
    spec = _job_spec(plan, task, model, 0, "")
    overrides = dict(spec["overrides"]) | ({"epochs": plan.epochs} if plan.epochs is not None else {})
    return build_config(all_models()[model].config, overrides, strict=False)


def dataset_defaults(model: str, dataset: str) -> dict:
    """A model's config values for one dataset (its class's ``DATASET_DEFAULTS[dataset]``), if any."""
    return all_models()[model].dataset_defaults(dataset)


def partition(plan, jobs: list[tuple[str, str, int]], say: bool = True, probe=None, always_say: bool = False) -> dict:
    """{job index: JobResult} for the jobs not to train: not started (the dataset lacks what the
    model needs) or kept (records exist for the same config, data and code; plan.skip_existing).
    Prints the plan (stderr) when any job is left out, or when there are several jobs, each job to
    train with its estimated time: from its earlier run here, or else from `probe` (a function of
    the jobs that times their first batches: bench/run/probe.py), or none. `always_say`: print it
    for a single job too (--dry-run, whose whole output the plan is)."""
    ds_dir = data_root(plan.data_root) / plan.dataset
    has = dataset_has(ds_dir)
    manifest = manifest_of(ds_dir)
    done, lines = {}, []
    estimates: dict[int, Estimate] = {}  # job index -> its estimate, for the jobs to train
    at_line: dict[int, int] = {}  # job index -> its line in the plan
    for j, (task, model, seed) in enumerate(jobs):
        cfg = job_config(plan, task, model)
        name = f"{model} · {task} · seed {seed}"
        why = missing_data(model, cfg, plan.dataset, ds_dir, has)
        if why:
            done[j] = JobResult(task, model, seed, [], skipped=why)
            lines.append(f"  not started  {name}: {why}")
            continue
        old = None
        if manifest is not None:
            from bench.config import config_dict
            from bench.train import resolve_device

            device = resolve_device(plan.device)  # the kind the workers will run on (auto: cuda when present)

            fp = job_fingerprint(model=model, cls=all_models()[model].cls, task=task, config=config_dict(cfg),
                                 manifest=manifest, indexing=plan.indexing, tag=plan.tag, device=device)
            key = {"model": model, "task": task, "dataset": plan.dataset, "seed": seed, "tag": plan.tag,
                   "indexing": plan.indexing}
            old = existing_records(plan.results_dir, key, fp)
        if old is not None and old.current and plan.skip_existing:
            done[j] = JobResult(task, model, seed, load_existing(old.paths), reused=True)
            lines.append(
                f"  skipped      {name}: record exists ({describe(old.paths[0])}: same config, data and code); "
                "use --rerun to train it again"
            )
        elif old is not None and old.current:
            lines.append(f"  train        {name} (again: --rerun; its record is replaced)")
        elif old is not None:
            lines.append(f"  train        {name} (its record, from another config, data or code, is replaced)")
        else:
            lines.append(f"  train        {name}")
        if j not in done:
            est = earlier_job_seconds(plan.results_dir, {"model": model, "task": task, "dataset": plan.dataset,
                                                         "seed": seed, "tag": plan.tag, "indexing": plan.indexing})
            if est is not None:  # training stops at --time-limit; the evaluation after it does not
                est = min(est[0], plan.time_limit_s or est[0]) + est[1]
            estimates[j] = Estimate(est, _estimate(est))
            at_line[j] = len(lines) - 1
    unknown = [j for j in estimates if estimates[j].seconds is None]
    if probe is not None and unknown:
        estimates |= dict(zip(unknown, probe([jobs[j] for j in unknown]), strict=True))
    for j, line in at_line.items():
        lines[line] += f"  [{estimates[j].text}]"
    if say and (always_say or done or len(jobs) > 1 or plan.time_limit_s):
        from bench.progress import _fmt_secs

        limit = "" if not plan.time_limit_s else f" (each stops training after {_fmt_secs(plan.time_limit_s)})"
        total = total_line(list(estimates.values()), min(plan.parallel, len(estimates)))  # at most one per job
        print(f"plan: {len(jobs)} job(s) on {plan.dataset}, {len(jobs) - len(done)} to train{limit}\n"
              + "\n".join(lines) + (f"\n{total}" if total else ""), file=sys.stderr, flush=True)
    return done


def earlier_job_seconds(results_dir: str, rec_key: dict) -> tuple[float, float] | None:
    """How long the same job (model, task, dataset, tag, indexing; any seed, any config) took when it
    ran here: (training, evaluation of all its prompts) seconds of its longest seed. None when it
    never ran. A guide for the plan, not a promise: another config or machine changes it."""
    from bench.results import record_path

    run_dir = record_path(results_dir, rec_key | {"prompt": None}).parent
    per_seed: dict[int, list[float]] = {}
    for p in run_dir.glob("seed*.json") if run_dir.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("indexing", "random") != rec_key["indexing"]:
            continue
        # one training per seed, shared by its records (one per prompt); each prompt's evaluation adds up
        fit_eval = per_seed.setdefault(rec.get("seed"), [rec.get("fit_time_s") or 0.0, 0.0])
        fit_eval[1] += rec.get("eval_time_s") or 0.0
    return tuple(max(per_seed.values(), key=sum)) if per_seed else None


def _estimate(seconds: float | None) -> str:
    from bench.progress import _fmt_secs

    return ("never ran here: it estimates itself after its first batches (--dry-run times them all first)"
            if seconds is None else f"~{_fmt_secs(seconds)} in an earlier run")
