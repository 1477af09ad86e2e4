"""Shared fixtures: a tiny synthetic dataset (all three tasks) generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = {"n_users": 80, "n_items": 150, "seed": 0}


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    from bench.data.synthetic import generate

    root = tmp_path_factory.mktemp("data")
    generate(root, name="tiny", **TINY)
    return root


@pytest.fixture(scope="session")
def tiny(tiny_root):
    from bench.data import load_dataset

    return load_dataset("tiny", tiny_root)
