"""Fixtures for the reporting tests (record helpers are in fakes.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake_model(monkeypatch):
    """Registers the `fakevip5` stand-in here and, through BENCH_PLUGINS, in the runner's child processes."""
    import ablate_plugin

    from bench import registry

    registry.all_models()
    registry.register_model("fakevip5", tasks={"sequential", "direct", "explanation"},
                            config=ablate_plugin.FakeVIP5Config)(ablate_plugin.FakeVIP5)
    monkeypatch.setenv("BENCH_PLUGINS", "ablate_plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield "fakevip5"
    registry._REGISTRY.pop("fakevip5", None)
