"""Record and checkpoint paths: one per (dataset, task, model+tag, seed, prompt, indexing); the record's
declared fields, checked when a record is written and when it is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results import checkpoint_dir, record_path


def test_the_two_indexings_never_share_a_record_or_a_checkpoint():
    rec = {"model": "sasrec", "task": "sequential", "dataset": "beauty", "seed": 1, "tag": None}
    rand, seq = rec | {"indexing": "random"}, rec | {"indexing": "sequential"}
    assert record_path(Path("r"), rand) == Path("r/runs/beauty/sequential/sasrec/seed1.json")  # the documented layout
    assert record_path(Path("r"), seq) == Path("r/runs/beauty/sequential/sasrec/seed1__sequential.json")
    assert checkpoint_dir(Path("r"), rand) != checkpoint_dir(Path("r"), seq)
    vip5 = {"model": "vip5", "task": "direct", "dataset": "d", "seed": 2, "tag": "self", "prompt": "B-5",
            "indexing": "sequential"}
    assert record_path(Path("r"), vip5).name == "seed2__B-5__sequential.json"
    assert record_path(Path("r"), vip5).parent.name == "vip5+self"


# ------------------------------------------------------------------ the record's declared schema

REPO = Path(__file__).resolve().parents[2]


def _record(**changes) -> dict:
    """A complete record as the worker builds it (build_record), with `changes` applied."""
    from bench.results import MODEL, RECORD_FIELDS, WORKER, build_record

    values = {f.name: _sample(f) for f in RECORD_FIELDS if f.source == WORKER}
    values |= {"model": "m", "task": "direct", "dataset": "d", "seed": 1, "prompt": None, "tag": None,
               "indexing": "random"}
    rec = build_record(values) | {f.name: _sample(f) for f in RECORD_FIELDS if f.source == MODEL}
    for k, v in changes.items():
        if v is _DROP:
            del rec[k]
        else:
            rec[k] = v
    return rec


def _sample(field):
    """A value of the field's first declared type."""
    return {"integer": 1, "number": 1.5, "string": "x", "boolean": False, "object": {}, "array": [],
            "null": None}[field.types.split("|")[0]]


_DROP = object()
BAD = [({"seed": _DROP}, "lacks required field 'seed'"),
       ({"indexing": _DROP}, "lacks required field 'indexing'"),
       ({"seed": "1"}, "field 'seed' must be integer, not string \"1\""),
       ({"seed": True}, "field 'seed' must be integer, not boolean true"),
       ({"prompt": 3}, "field 'prompt' must be string or null, not integer 3"),
       ({"metrics": [0.1]}, "field 'metrics' must be object, not array [0.1]"),
       ({"time_capped": None}, "field 'time_capped' must be boolean, not null"),
       ({"decoding": 1}, "field 'decoding' must be string, not integer 1")]


def test_the_builder_lays_out_every_declared_field_in_order():
    from bench.results import RECORD_FIELDS, RECORD_SCHEMA, WORKER, build_record, record_problem

    rec = _record()
    assert list(rec) == [f.name for f in RECORD_FIELDS]  # model extras come last, as the worker merges them
    assert rec["schema"] == RECORD_SCHEMA and rec["timestamp"] and "python" in rec["versions"]
    assert record_problem(rec) is None
    assert len({f.name for f in RECORD_FIELDS}) == len(RECORD_FIELDS)
    worker_values = {f.name: rec[f.name] for f in RECORD_FIELDS if f.source == WORKER}
    with pytest.raises(TypeError, match=r"missing fields \['metrics'\]"):
        build_record({k: v for k, v in worker_values.items() if k != "metrics"})
    with pytest.raises(TypeError, match=r"unknown fields \['metric'\]"):
        build_record(worker_values | {"metric": {}})


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_a_bad_record_is_refused_on_write(tmp_path, changes, message):
    from bench.errors import DataFormatError
    from bench.results import write_record

    rec = _record(**changes)
    with pytest.raises(DataFormatError) as e:
        write_record(tmp_path, rec)
    text = str(e.value)
    assert message in text and "\n" not in text
    # the file it would have been; lacking what names that file, the folder it would have gone to
    where = tmp_path / "runs" if changes.get("seed") is _DROP else record_path(tmp_path, rec)
    assert text.startswith(f"{where}: ")
    assert not list(tmp_path.rglob("*.json")), "nothing is written"


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_a_bad_record_is_refused_on_read(tmp_path, changes, message):
    from bench.errors import DataFormatError
    from bench.results import load_records, write_record

    good = write_record(tmp_path, _record())
    bad = good.with_name("seed1__B-5.json")
    bad.write_text(json.dumps(_record(**changes)))
    with pytest.raises(DataFormatError) as e:
        load_records(tmp_path)
    assert str(e.value).startswith(f"{bad}: ") and message in str(e.value) and "\n" not in str(e.value)
    bad.write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="must be a JSON object, not array"):
        load_records(tmp_path, "d", "direct")
    bad.unlink()
    assert [r["_path"] for r in load_records(tmp_path)] == [str(good)]


def test_fields_that_are_not_declared_pass_unchecked(tmp_path):
    """A plugin model's record_extras may add its own fields."""
    from bench.results import load_records, write_record

    write_record(tmp_path, _record(my_plugin_extra=[1, "a"]))
    assert load_records(tmp_path)[0]["my_plugin_extra"] == [1, "a"]


def test_every_committed_record_validates():
    from bench.results import check_record, load_records

    paths = sorted((REPO / "results").glob("**/runs/**/*.json"))
    assert len(paths) > 100
    for p in paths:
        check_record(json.loads(p.read_text()), p)
    # every results tree (results/, results/reference/, a study's own tree) is loadable as a whole
    roots = sorted({p.parent for p in (REPO / "results").glob("**/runs") if p.is_dir()})
    assert REPO / "results" in roots
    assert sum(len(load_records(root)) for root in roots) == len(paths)
