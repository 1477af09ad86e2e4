"""Versioned datasets (a dataset of an older generator is regenerated, an older import is refused
with the re-import command) and the `bench data` commands' refusals (existing names, unsafe names,
impossible sizes): one line, exit 2, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.data import load_dataset
from bench.data.cli import main as data_main
from bench.data.importers import IMPORTER_VERSION, import_path
from bench.data.synthetic import GENERATOR_VERSION, generate
from bench.errors import BenchError

SMALL = {"n_users": 20, "n_items": 130, "seed": 3}


def _set_version(ds: Path, version: int | None) -> None:
    m = json.loads((ds / "manifest.json").read_text())
    if version is None:
        m.pop("format")
    else:
        m["format"]["version"] = version
    (ds / "manifest.json").write_text(json.dumps(m))


def _plain_file(path: Path, n_users: int = 12, n_items: int = 150) -> Path:
    path.write_text("".join(f"u{u} " + " ".join(f"i{(u * 5 + k) % n_items}" for k in range(5)) + "\n"
                            for u in range(n_users)))
    return path


def test_manifest_records_the_writer_and_its_version(tmp_path):
    m = json.loads((generate(tmp_path, "s", **SMALL) / "manifest.json").read_text())
    assert m["format"] == {"by": "bench.data.synthetic", "version": GENERATOR_VERSION}
    import_path(_plain_file(tmp_path / "seq.txt"), tmp_path, "p")
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["format"] == {"by": "bench.data.importers:sequence_file", "version": IMPORTER_VERSION}


def test_a_dataset_from_an_older_generator_is_regenerated_with_its_sizes_and_seed(tmp_path, monkeypatch, capsys):
    ds = generate(tmp_path, "s", **SMALL)
    seqs = (ds / "sequences.txt").read_text()
    (ds / "stale-marker").write_text("x")  # gone after regeneration
    monkeypatch.setattr("bench.data.synthetic.GENERATOR_VERSION", GENERATOR_VERSION + 1)
    d = load_dataset("s", tmp_path)
    assert "regenerating" in capsys.readouterr().err
    assert d.manifest["format"]["version"] == GENERATOR_VERSION + 1 and d.n_users == SMALL["n_users"]
    assert (ds / "sequences.txt").read_text() == seqs and not (ds / "stale-marker").exists()
    load_dataset("s", tmp_path)  # current now: not regenerated again
    assert "regenerating" not in capsys.readouterr().err


def test_an_import_of_another_version_is_refused_with_the_reimport_command(tmp_path):
    src = _plain_file(tmp_path / "seq.txt")
    import_path(src, tmp_path / "root", "p", seed=5)
    _set_version(tmp_path / "root" / "p", IMPORTER_VERSION - 1)
    with pytest.raises(BenchError) as e:
        load_dataset("p", tmp_path / "root")
    msg = str(e.value)
    assert "\n" not in msg and f"version {IMPORTER_VERSION - 1}" in msg
    assert f"python -m bench data import {src.resolve()} --name p --seed 5" in msg and "--force" in msg


def test_a_manifest_from_before_versions_counts_as_version_1(tmp_path, monkeypatch, capsys):
    from bench.data.dataset import format_version

    ds = generate(tmp_path, "s", **SMALL)
    _set_version(ds, None)
    monkeypatch.setattr("bench.data.synthetic.GENERATOR_VERSION", 1)
    assert format_version(load_dataset("s", tmp_path).manifest) == 1 and "regenerating" not in capsys.readouterr().err
    monkeypatch.setattr("bench.data.synthetic.GENERATOR_VERSION", 2)
    assert load_dataset("s", tmp_path).manifest["format"]["version"] == 2 and "regenerating" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- bench data


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = data_main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_generate_refuses_an_existing_name_without_force_and_replaces_it_with(tmp_path, capsys):
    root = tmp_path / "root"
    assert _run(capsys, "generate", "--name", "s", "--users", 20, "--items", 130, "--data-root", root)[0] == 0
    before = (root / "s" / "manifest.json").read_bytes()
    rc, _, err = _run(capsys, "generate", "--name", "s", "--users", 25, "--items", 130, "--data-root", root)
    assert rc == 2 and "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert (root / "s" / "manifest.json").read_bytes() == before  # nothing changed
    assert (
        _run(capsys, "generate", "--name", "s", "--users", 25, "--items", 130, "--force", "--data-root", root)[0] == 0
    )
    assert load_dataset("s", root).n_users == 25
    assert sorted(p.name for p in root.iterdir()) == ["s"]  # the old copy is gone once the new one is in


def test_import_refuses_an_existing_name_and_a_failed_forced_import_keeps_the_old(tmp_path, capsys):
    root, src = tmp_path / "root", _plain_file(tmp_path / "seq.txt")
    assert _run(capsys, "import", src, "--name", "p", "--data-root", root)[0] == 0
    before = (root / "p" / "manifest.json").read_bytes()
    rc, _, err = _run(capsys, "import", src, "--name", "p", "--data-root", root)
    assert rc == 2 and "already exists" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("u1 a b c\nu1 d e f\n")
    rc, _, err = _run(capsys, "import", bad, "--name", "p", "--force", "--data-root", root)
    assert rc == 1 and f"{bad}:2" in err
    assert (root / "p" / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("argv, expected", [
    (["--items", "80"], "--items 80"),
    (["--users", "-5"], "--users -5"),
    (["--users", "0"], "--users 0"),
    (["--name", "../evil"], "invalid dataset name '../evil'"),
    (["--name", ".hidden"], "invalid dataset name"),
    (["--name", "a/b"], "invalid dataset name"),
])
def test_bad_generate_values_give_one_line_and_exit_2(tmp_path, capsys, argv, expected):
    rc, out, err = _run(capsys, "generate", *argv, "--data-root", tmp_path / "root")
    assert rc == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())
    assert not (tmp_path / "evil").exists()


def test_import_refuses_an_unsafe_name(tmp_path, capsys):
    rc, _, err = _run(capsys, "import", _plain_file(tmp_path / "seq.txt"), "--name", "../evil", "--data-root",
                      tmp_path / "root")
    assert rc == 2 and "invalid dataset name" in err and not (tmp_path / "evil").exists()


def test_show_says_why_a_task_is_missing(tmp_path, capsys):
    src = _plain_file(tmp_path / "seq.txt", n_users=10, n_items=50)
    rc, out, _ = _run(capsys, "import", src, "--name", "small", "--data-root", tmp_path)
    assert rc == 0 and "tasks:          sequential\n" in out and "no direct task:  50 items" in out
