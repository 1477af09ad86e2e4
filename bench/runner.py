"""`bench run`: validate every name first, then train and evaluate each (task, model, seed)
in its own subprocess, and print the comparison table.

Under ``torchrun --nproc_per_node N -m bench run ...`` each of the N processes runs the jobs
itself instead (no child process): one rank of a DistributedDataParallel job each, rank 0 alone
evaluating, writing records and printing. Only models that declare ``DISTRIBUTED = True``
(vip5, p5) may run there; a failure on any rank ends the whole torchrun job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import distributed
from bench.config import build_config
from bench.data import SYNTHETIC, TASKS, check_dataset_name
from bench.data.dataset import dataset_task_support
from bench.errors import UsageError
from bench.registry import all_models, check_model_task, check_task, get_model, models_for_task


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
    time_limit_s: float | None = None  # per job: training stops there (--time-limit; bench.train.set_time_limit)

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
    from bench import preflight
    from bench.data.splits import INDEXINGS
    from bench.errors import UnknownNameError

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
        tasks = list(TASKS)
    models = list(dict.fromkeys(models)) if models else models  # a job named twice would wait on its own lock
    seeds = list(dict.fromkeys(seeds))
    for m in models or []:
        check_model_task(m, task) if task is not None else get_model(m)
    support = dataset_task_support(dataset, data_root_)  # task -> None, or why the dataset cannot have it
    available = [t for t, why in support.items() if why is None]
    if task is not None and task not in available:
        raise UsageError(f"--task {task}: dataset {dataset!r} has no {task!r} task ({support.get(task)}); "
                         f"it has: {', '.join(available)}")
    tasks = [t for t in tasks if t in available]
    per_task = {t: [m for m in (models or models_for_task(t)) if t in all_models()[m].tasks] for t in tasks}
    per_task = {t: ms for t, ms in per_task.items() if ms}  # with no --task: tasks no selected model supports are skipped
    tasks = list(per_task)
    if not tasks:
        raise UsageError(f"none of the models {', '.join(models or [])} supports the tasks of {dataset!r}: {', '.join(available)}")
    selected = {m for ms in per_task.values() for m in ms}
    if distributed.launched():
        single = sorted(m for m in selected if not getattr(all_models()[m].cls, "DISTRIBUTED", False))
        if single:
            able = sorted(n for n, s in all_models().items() if getattr(s.cls, "DISTRIBUTED", False))
            raise UsageError(f"under torchrun only {', '.join(able)} train (DistributedDataParallel); run "
                             f"{', '.join(single)} without torchrun (python -m bench run ... --models {','.join(single)})")
    for key in overrides:
        owners = [m for m in selected if key in all_models()[m].config.__dataclass_fields__]
        if not owners:
            raise UsageError(f"--set {key}: no selected model has this config key (models: {', '.join(sorted(selected))})")
    for m in selected:  # type-check and range-check now, not in the middle of the run
        build_config(all_models()[m].config, overrides, strict=False)
    preflight.check_counts(epochs, seeds)
    preflight.check_device(device)
    chosen = {}
    if tuned:
        from bench.tune import load_tuned

        chosen = {(t, m): load_tuned(results_dir, dataset, t, m) for t, ms in per_task.items() for m in ms}
    width = resolve_parallel(parallel, device)
    preflight.check_results_dir(results_dir)  # last: a bad name above fails without creating anything
    return RunPlan(dataset, tasks, per_task, seeds, overrides, epochs, device, indexing, data_root_, results_dir, tag, chosen,
                   width, skip_existing, verbose, time_limit_s)


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
    skipped: str | None = None  # not started: what the dataset lacks and the fix (bench/preflight.py)
    reused: bool = False  # its records already existed for the same config, data and code (not trained again)


def execute(plan: RunPlan, command: str = "") -> list[JobResult]:
    import signal

    # SIGTERM (kill, CI timeouts) unwinds like Ctrl-C, so the running child is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    torchrun = distributed.launched()
    device = distributed.init(plan.device) if torchrun else plan.device  # this rank's cuda:LOCAL_RANK, or cpu
    main = distributed.is_main()
    if plan.dataset == SYNTHETIC:  # generate once here (on rank 0), not concurrently in the children
        from bench.data import load_dataset

        if main:
            load_dataset(SYNTHETIC, plan.data_root, verify=False)
        distributed.barrier()
    from bench.preflight import partition

    all_jobs = list(plan.jobs())
    done = partition(plan, all_jobs, say=main)  # not started (data needs) or kept (records exist); prints the plan
    jobs = [job for j, job in enumerate(all_jobs) if j not in done]
    # the records say how many jobs really shared the machine: never more than there are jobs
    plan = replace(plan, parallel=1 if torchrun else max(1, min(plan.parallel, len(jobs))))
    ran = _run_side_by_side(plan, jobs, command) if plan.parallel > 1 else _run_one_at_a_time(plan, jobs, command, device)
    ran_iter = iter(ran)
    return [done[j] if j in done else next(ran_iter) for j in range(len(all_jobs))]  # in the plan's order


def _run_one_at_a_time(plan: RunPlan, jobs: list[tuple[str, str, int]], command: str, device: str) -> list[JobResult]:
    torchrun, main = distributed.launched(), distributed.is_main()
    results = []
    for n, (task, model, seed) in enumerate(jobs, 1):
        if main:
            print(f"\n=== [{n}/{len(jobs)}] {model} · {task} · {plan.dataset} · seed {seed} ===", file=sys.stderr, flush=True)
        if torchrun:
            results.append(_run_in_process(plan, task, model, seed, command, device))
        else:
            results.append(_run_child(plan, task, model, seed, command))
        r = results[-1]
        status = "ok" if r.error is None else f"FAILED: {r.error}"
        if main:
            print(f"=== {model} · {task}: {status} ({r.wall_s:.1f}s)", file=sys.stderr, flush=True)
    return results


def _job_spec(plan: RunPlan, task: str, model: str, seed: int, command: str) -> dict:
    fields = all_models()[model].config.__dataclass_fields__
    # explicit --set values win over the values `bench tune` chose, which win over the model's own
    # settings for this dataset (DATASET_DEFAULTS: e.g. VIP5's CPU budget on the embedded dataset)
    own = dataset_defaults(model, plan.dataset)
    overrides = own | plan.tuned.get((task, model), {}) | {k: v for k, v in plan.overrides.items() if k in fields}
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
    return dict(getattr(all_models()[model].cls, "DATASET_DEFAULTS", {}).get(dataset, {}))


def _run_in_process(plan: RunPlan, task: str, model: str, seed: int, command: str, device: str) -> JobResult:
    """One rank's part of a torchrun job; only rank 0 gets records back. An error is raised, not
    contained: the other ranks would wait for this one forever, so torchrun has to stop them."""
    import gc

    from bench.worker import run_one

    t0 = time.perf_counter()
    paths = run_one(_job_spec(plan, task, model, seed, command) | {"device": device})
    gc.collect()  # this model's memory is free before the next job measures its own peak
    distributed.barrier()  # the others wait here while rank 0 evaluates, so the next job starts together
    recs = [json.loads(Path(p).read_text()) for p in paths]
    return JobResult(task, model, seed, recs, None, time.perf_counter() - t0)


def side_by_side_order(tasks: list[str], jobs: list[tuple[str, str, int]]) -> list[int]:
    """Indices of `jobs` in the order they start side by side. Within each task the long-running
    models (a class's RUN_COST: VIP5, which trains its P5 backbone first, then S3-Rec, then P5) start first
    and the short ones fill in around them; tasks keep their order, so VIP5's later tasks find
    the backbone its first task cached."""
    task_order = {t: i for i, t in enumerate(tasks)}
    return sorted(range(len(jobs)), key=lambda j: (
        task_order[jobs[j][0]], -getattr(all_models()[jobs[j][1]].cls, "RUN_COST", 1), j))


def shared_trainings(plan: RunPlan, task: str, model: str, seed: int) -> frozenset:
    """The cached trainings a job may have to run first (a model class's ``SHARED_TRAININGS``,
    e.g. VIP5: its P5 backbone, then its own multitask training): jobs that need one that another
    running job is training wait in the queue instead of blocking a core on its lock."""
    names = getattr(all_models()[model].cls, "SHARED_TRAININGS", ())
    return frozenset((name, plan.dataset, seed) for name in names)


def _run_side_by_side(plan: RunPlan, jobs: list[tuple[str, str, int]], command: str) -> list[JobResult]:
    """`plan.parallel` child processes at a time, each limited to its share of the cores; their
    output lines come through prefixed with the job's name. Results keep the plan's order.
    A job starts when a slot is free and none of its shared trainings is being trained by a
    running job (so P5 trains before the VIP5 built on it, and each training runs once)."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    threads = max(1, usable_cores() // plan.parallel)
    say = threading.Lock()  # one line at a time on our stderr
    pending = side_by_side_order(plan.tasks, jobs)
    needs = {j: shared_trainings(plan, *jobs[j]) for j in pending}
    print(f"running {len(jobs)} jobs, {plan.parallel} side by side ({threads} thread(s) each)", file=sys.stderr, flush=True)

    def one(n: int, task: str, model: str, seed: int) -> JobResult:
        with say:
            print(f"=== [{n}/{len(jobs)}] start {model} · {task} · {plan.dataset} · seed {seed}", file=sys.stderr, flush=True)
        r = _run_child(plan, task, model, seed, command, relay=(f"[{model}·{task}·{seed}] ", say), threads=threads)
        status = "ok" if r.error is None else f"FAILED: {r.error}"
        with say:
            print(f"=== [{n}/{len(jobs)}] {model} · {task} · seed {seed}: {status} ({r.wall_s:.1f}s)", file=sys.stderr, flush=True)
        return r

    results: dict[int, JobResult] = {}
    running: dict = {}  # future -> (job index, the trainings it may be running)
    training, trained = set(), set()
    with ThreadPoolExecutor(plan.parallel) as pool:
        try:
            while pending or running:
                while len(running) < plan.parallel:
                    j = next((j for j in pending if not needs[j] & training), None)
                    if j is None:
                        break
                    pending.remove(j)
                    claim = needs[j] - trained
                    training |= claim
                    running[pool.submit(one, len(results) + len(running) + 1, *jobs[j])] = (j, claim)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    j, claim = running.pop(f)
                    training -= claim
                    trained |= claim
                    results[j] = f.result()
        except BaseException:  # Ctrl-C or SIGTERM: stop the queue and every running child
            for f in running:
                f.cancel()
            _stop(*_children)
            raise
    return [results[j] for j in range(len(jobs))]  # in the plan's order


_children: set[subprocess.Popen] = set()  # running job processes (several with --jobs)


def _stop(*procs: subprocess.Popen) -> None:
    """Terminate, then kill what has not ended within 10 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _relay(stream, prefix: str, lock) -> None:
    """Copy a child's stderr to ours, a line (or progress-bar refresh) at a time, prefixed."""
    buf = b""
    for chunk in iter(lambda: stream.read1(4096), b""):
        buf += chunk
        *parts, buf = re.split(rb"[\r\n]", buf)
        lines = [p.decode(errors="replace").strip() for p in parts]
        with lock:
            for line in filter(None, lines):
                print(prefix + line, file=sys.stderr, flush=True)
    if buf.strip():
        with lock:
            print(prefix + buf.decode(errors="replace").strip(), file=sys.stderr, flush=True)


def _run_child(plan: RunPlan, task: str, model: str, seed: int, command: str, relay=None, threads: int | None = None) -> JobResult:
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        spec = _job_spec(plan, task, model, seed, command) | {"out": str(Path(tmp) / "out.json")}
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        env = os.environ.copy()
        if threads is not None and "OMP_NUM_THREADS" not in env:  # a user's own setting wins
            env["OMP_NUM_THREADS"] = str(threads)
        t0 = time.perf_counter()
        # alone: the child's progress goes straight to our stderr; side by side: through _relay.
        # Its outcome comes back in out.json
        proc = subprocess.Popen([sys.executable, "-m", "bench.worker", str(spec_path)], env=env,
                                stderr=subprocess.PIPE if relay else None)
        _children.add(proc)
        try:
            if relay:
                _relay(proc.stderr, *relay)
            proc.wait()
        except BaseException:  # interrupted or terminated: do not leave the child training on its own
            _stop(proc)
            raise
        finally:
            _children.discard(proc)
        wall = time.perf_counter() - t0
        out_path = Path(spec["out"])
        if not out_path.exists():
            return JobResult(task, model, seed, [], f"process died (exit code {proc.returncode})", wall)
        out = json.loads(out_path.read_text())
    if not out["ok"]:
        return JobResult(task, model, seed, [], out["error"], wall)
    recs = [json.loads(Path(p).read_text()) for p in out["records"]]
    return JobResult(task, model, seed, recs, None, wall)
