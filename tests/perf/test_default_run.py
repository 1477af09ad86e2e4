"""The wall time of the main job: `python -m bench run` with no arguments (every task, every
registered model, one seed, the embedded dataset), as a user types it. A measurement, not a
time limit: it takes many minutes, so it is also marked slow and runs only when asked for:

    pytest tests/perf -m slow --benchmark-only --benchmark-json results/perf/default_run.json

The record of each run (time per epoch, epochs) is attached as extra_info, so the report says
where the time went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_default_run(benchmark, tmp_path):
    results = tmp_path / "results"
    env = os.environ | {"BENCH_DATA": str(tmp_path / "data")}  # a fresh machine: the dataset is generated first

    def main_job():
        proc = subprocess.run([sys.executable, "-m", "bench", "run", "--results-dir", str(results)], cwd=REPO,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    benchmark.pedantic(main_job, rounds=1, iterations=1)
    per_run = {}
    for path in sorted((results / "runs").rglob("*.json")):
        rec = json.loads(path.read_text())
        key = f"{rec['task']}/{rec['model']}"
        # one record per evaluation prompt: training is shared, evaluation time adds up
        run = per_run.setdefault(key, {"time_per_epoch_s": rec["time_per_epoch_s"], "epochs": rec["epochs"],
                                       "fit_time_s": rec.get("fit_time_s"), "eval_time_s": 0.0,
                                       "concurrent_jobs": rec.get("concurrent_jobs", 1)})
        run["eval_time_s"] += rec.get("eval_time_s") or 0.0
    benchmark.extra_info |= {"runs": len(per_run), "per_run": per_run,
                             "command": "pytest tests/perf -m slow --benchmark-only --benchmark-json FILE"}
    assert per_run, "the main job wrote no records"
