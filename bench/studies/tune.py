"""`bench tune`: a small grid search on the validation split, so baselines are not weakened by defaults.

The grid is the model's ``TUNE_GRID`` (a few values of the hyper-parameters that matter most)
or ``--grid key=v1,v2`` options. Every trial is a normal run (own subprocess, record written
under ``<results>/tune/``); the winner by the validation metric is stored in
``<results>/tuned/<dataset>/<task>/<model>.json`` and used by ``bench run --tuned``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from tabulate import tabulate

from bench.config import tuned_path
from bench.errors import UsageError
from bench.io import atomic_write_json
from bench.results import now_iso


def parse_grid(pairs: list[str] | None, model_grid: dict | None) -> dict[str, list[str]]:
    if pairs:
        grid = {}
        for p in pairs:
            if "=" not in p:
                raise UsageError(f"--grid {p!r}: expected key=v1,v2,...")
            k, v = p.split("=", 1)
            grid[k.strip()] = [x.strip() for x in v.split(",") if x.strip()]
        return grid
    if not model_grid:
        raise UsageError("this model has no TUNE_GRID; give the values with --grid key=v1,v2")
    return {k: [str(v) for v in vs] for k, vs in model_grid.items()}


def tune(*, model: str, task: str, dataset: str, grid_pairs: list[str] | None, seed: int, epochs: int | None,
         device: str, indexing: str, data_root: str | None, results_dir: str, sets: dict[str, str]) -> int:
    from bench.registry import check_task, get_model
    from bench.run.runner import execute, plan_run

    spec = get_model(model)
    grid = parse_grid(grid_pairs, spec.tune_grid)
    keys = list(grid)
    trials = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    monitor = check_task(task).monitor
    rows, best, best_score = [], None, -float("inf")
    tune_dir = str(Path(results_dir) / "tune")
    for n, trial in enumerate(trials, 1):
        tag = "tune-" + "-".join(f"{k}={v}" for k, v in trial.items())
        plan = plan_run(task=task, dataset=dataset, models=[model], seeds=[seed], overrides=sets | trial, epochs=epochs,
                        device=device, indexing=indexing, data_root_=data_root, results_dir=tune_dir, tag=tag)
        print(f"\n### trial {n}/{len(trials)}: {trial}")
        (res,) = execute(plan, command=f"python -m bench tune --model {model} --task {task} --dataset {dataset}")
        if res.error or not res.records:
            rows.append([*trial.values(), "", "", f"FAILED: {res.error}"])
            continue
        rec = res.records[0]
        score = (rec.get("val_metrics") or {}).get(monitor, float("nan"))
        rows.append([*trial.values(), f"{score:.4f}", f"{rec['metrics'][monitor]:.4f}", "ok"])
        if score > best_score:
            best, best_score = trial, score
    table = tabulate(rows, headers=[*keys, f"val {monitor}", f"test {monitor}", "status"], tablefmt="github")
    print(f"\n## tuning {model} · {task} · {dataset} (selected by validation {monitor})\n\n{table}")
    if best is None:
        return 1
    out = tuned_path(results_dir, dataset, task, model)
    atomic_write_json(out, {"model": model, "task": task, "dataset": dataset, "monitor": monitor, "seed": seed,
                            "grid": grid, "best": best, "best_val": best_score, "fixed": sets, "table": table,
                            "timestamp": now_iso()})
    print(f"\nbest: {best} (val {monitor} {best_score:.4f}) -> {out}; use it with: python -m bench run --tuned ...")
    return 0
