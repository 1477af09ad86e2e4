"""`bench run`: execute a plan (bench/run/plan.py): train and evaluate each (task, model, seed)
in its own subprocess (bench/run/worker.py), one at a time or side by side.

Under ``torchrun --nproc_per_node N -m bench run ...`` each of the N processes runs the jobs
itself instead (no child process): one rank of a DistributedDataParallel job each, rank 0 alone
evaluating, writing records and printing. Only models that declare ``DISTRIBUTED = True``
(vip5, p5) may run there; a failure on any rank ends the whole torchrun job."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench import distributed
from bench.data import SYNTHETIC
from bench.registry import all_models
from bench.run.plan import (  # noqa: F401  (plan_run, usable_cores: `bench.run.runner` is the run's entry point)
    JobResult,
    RunPlan,
    _job_spec,
    dataset_defaults,
    job_config,
    partition,
    plan_run,
    resolve_parallel,
    usable_cores,
)


def execute(plan: RunPlan, command: str = "") -> list[JobResult]:
    import signal

    # SIGTERM (kill, CI timeouts) unwinds like Ctrl-C, so the running child is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    torchrun = distributed.launched()
    device = distributed.init(plan.device) if torchrun else plan.device  # this rank's cuda:LOCAL_RANK, or cpu
    main = distributed.is_main()
    if main:
        _generate_embedded(plan)
    distributed.barrier()

    all_jobs = list(plan.jobs())
    # not started (data needs) or kept (records exist); prints the plan, on a large dataset after timing
    # the first batches of the jobs that never ran here
    done = partition(plan, all_jobs, say=main, probe=None if torchrun else job_probe(plan))
    jobs = [job for j, job in enumerate(all_jobs) if j not in done]
    # the records say how many jobs really shared the machine: never more than there are jobs
    plan = replace(plan, parallel=1 if torchrun else max(1, min(plan.parallel, len(jobs))))
    ran = (
        _run_side_by_side(plan, jobs, command) if plan.parallel > 1 else _run_one_at_a_time(plan, jobs, command, device)
    )
    ran_iter = iter(ran)
    return [done[j] if j in done else next(ran_iter) for j in range(len(all_jobs))]  # in the plan's order


def job_probe(plan: RunPlan, always: bool = False):
    """The plan's estimate for jobs that never ran here (bench/run/probe.py): always with --dry-run,
    else on datasets of at least PROBE_MIN_INTERACTIONS interactions. None: not probed."""
    from bench.data import data_root
    from bench.run.preflight import manifest_of
    from bench.run.probe import PROBE_MIN_INTERACTIONS, probe_jobs

    counts = (manifest_of(data_root(plan.data_root) / plan.dataset) or {}).get("counts", {})
    if not always and counts.get("interactions", 0) < PROBE_MIN_INTERACTIONS:
        return None
    return lambda jobs: probe_jobs(plan, jobs, usable_cores(), _job_spec)


def dry_run(plan: RunPlan) -> None:
    """`bench run --dry-run`: the plan, every job to train with an estimate; nothing is trained."""
    _generate_embedded(plan)
    partition(plan, list(plan.jobs()), say=True, probe=job_probe(plan, always=True), always_say=True)


def _generate_embedded(plan: RunPlan) -> None:
    """The embedded dataset is generated once here (on rank 0), not concurrently by the jobs or probes."""
    if plan.dataset == SYNTHETIC:
        from bench.data import load_dataset

        load_dataset(SYNTHETIC, plan.data_root, verify=False)


def _run_one_at_a_time(plan: RunPlan, jobs: list[tuple[str, str, int]], command: str, device: str) -> list[JobResult]:
    torchrun, main = distributed.launched(), distributed.is_main()
    results = []
    for n, (task, model, seed) in enumerate(jobs, 1):
        if main:
            print(
                f"\n=== [{n}/{len(jobs)}] {model} · {task} · {plan.dataset} · seed {seed} ===",
                file=sys.stderr,
                flush=True,
            )
        if torchrun:
            results.append(_run_in_process(plan, task, model, seed, command, device))
        else:
            results.append(_run_child(plan, task, model, seed, command))
        r = results[-1]
        status = "ok" if r.error is None else f"FAILED: {r.error}"
        if main:
            print(f"=== {model} · {task}: {status} ({r.wall_s:.1f}s)", file=sys.stderr, flush=True)
    return results


def _run_in_process(plan: RunPlan, task: str, model: str, seed: int, command: str, device: str) -> JobResult:
    """One rank's part of a torchrun job; only rank 0 gets records back. An error is raised, not
    contained: the other ranks would wait for this one forever, so torchrun has to stop them."""
    import gc

    from bench.run.worker import run_one

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
        task_order[jobs[j][0]], -all_models()[jobs[j][1]].run_cost, j))


def shared_trainings(plan: RunPlan, task: str, model: str, seed: int) -> frozenset:
    """The cached trainings a job may have to run first (a model class's ``SHARED_TRAININGS``,
    e.g. VIP5: its P5 backbone, then its own multitask training): jobs that need one that another
    running job is training wait in the queue instead of blocking a core on its lock."""
    names = all_models()[model].shared_trainings
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
    print(
        f"running {len(jobs)} jobs, {plan.parallel} side by side ({threads} thread(s) each)",
        file=sys.stderr,
        flush=True,
    )

    def one(n: int, task: str, model: str, seed: int) -> JobResult:
        with say:
            print(
                f"=== [{n}/{len(jobs)}] start {model} · {task} · {plan.dataset} · seed {seed}",
                file=sys.stderr,
                flush=True,
            )
        r = _run_child(plan, task, model, seed, command, relay=(f"[{model}·{task}·{seed}] ", say), threads=threads)
        status = "ok" if r.error is None else f"FAILED: {r.error}"
        with say:
            print(
                f"=== [{n}/{len(jobs)}] {model} · {task} · seed {seed}: {status} ({r.wall_s:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
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


def _run_child(
    plan: RunPlan, task: str, model: str, seed: int, command: str, relay=None, threads: int | None = None
) -> JobResult:
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        spec = _job_spec(plan, task, model, seed, command) | {"out": str(Path(tmp) / "out.json")}
        from bench.run.worker import start  # here: the worker module imports what only the child needs

        t0 = time.perf_counter()
        # alone: the child's progress goes straight to our stderr; side by side: through _relay.
        # Its outcome comes back in out.json
        proc = start(spec, Path(tmp) / "spec.json", threads, output="pipe" if relay else "inherit")
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
