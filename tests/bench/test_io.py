"""Atomic writes: the old file survives a failed write, and new files get the usual mode."""

from __future__ import annotations

import os
import stat

import pytest

from bench.io import atomic_write_json, atomic_write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "record.json"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})  # not serialisable: fails before anything is replaced
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_written_files_follow_the_umask_not_mkstemp_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.md", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.md").stat().st_mode) == 0o644


def test_file_lock_makes_the_second_holder_wait(tmp_path):
    import threading

    from bench.io import file_lock

    lock = tmp_path / "cache" / "x.lock"
    order, first_in = [], threading.Event()

    def first():
        with file_lock(lock):
            first_in.set()
            order.append("first in")
            threading.Event().wait(0.3)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait()
    with file_lock(lock):  # blocks until `first` lets go
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]

