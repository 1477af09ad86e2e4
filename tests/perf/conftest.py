"""Adds what the timing depends on beyond pytest-benchmark's own machine_info: the torch
version, threads per process and the load average when the run started (bench perf-report
prints them)."""

from __future__ import annotations

import os


def pytest_benchmark_update_machine_info(config, machine_info):
    import torch

    machine_info["bench"] = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
