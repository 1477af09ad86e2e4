"""bench perf-report: the committed timing page is rendered from the pytest-benchmark JSON."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.errors import DataFormatError
from bench.report.perf import load_report, render, step_ratios


def _bench(name, params, extra, median, mean=None, mn=None):
    return {"name": name, "params": params, "extra_info": extra,
            "stats": {"median": median, "mean": mean or median, "min": mn or median, "rounds": 3}}


def _report():
    step = {"batch": 32, "tokens": 2000}
    return {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}, "system": "Linux", "release": "6",
                         "python_version": "3.11", "bench": {"torch": "2.x", "torch_threads": 1,
                                                             "omp_num_threads": "1", "cuda": None,
                                                             "loadavg": "0.5 0.5 0.5"}},
        "commit_info": {"id": "abcdef1234567890", "dirty": False},
        "datetime": "2026-11-29T00:00:00",
        "benchmarks": [
            _bench("test_training_step[adapters-tiny]", {"mode": "adapters", "size": "tiny"},
                   step | {"trainable_params": 100, "total_params": 1000}, 0.6, 0.9, 0.5),
            _bench("test_training_step[full-tiny]", {"mode": "full", "size": "tiny"},
                   step | {"trainable_params": 1000, "total_params": 1000}, 0.8, 1.0, 0.4),
            _bench("test_constrained_beam_search[direct]", {"task": "direct"},
                   {"users_per_call": 16, "beams": 20}, 4.0),
        ],
    }


def test_ratio_is_computed_from_the_medians():
    rows = step_ratios(_report())
    assert len(rows) == 1
    assert rows[0][0] == "`tiny`"
    assert rows[0][5] == "**0.75**"  # 0.6 / 0.8
    assert rows[0][6] == "0.90" and rows[0][7] == "1.25"  # mean 0.9/1.0, min 0.5/0.4
    assert "(10.0%)" in rows[0][1]


def test_page_states_machine_units_and_per_user_cost():
    text = render(_report(), "results/perf/x.json")
    assert "Test CPU, 2 cores" in text and "1 thread(s)" in text and "abcdef123456" in text
    assert "constrained beam search, 20 beams, 16 users, direct" in text
    assert "250.0 ms/user" in text  # 4.0 s / 16 users


def test_cli_writes_the_page(tmp_path, capsys):
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_report()))
    out = tmp_path / "README.md"
    assert main(["perf-report", str(src), "--out", str(out), "--note", "quiet machine"]) == 0
    assert "note: quiet machine" in out.read_text()


def test_bad_report_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    with pytest.raises(DataFormatError, match=r"bad.json:2: not JSON"):
        load_report(bad)
    bad.write_text("[]")
    with pytest.raises(DataFormatError, match="not a pytest-benchmark report"):
        load_report(bad)
    assert main(["perf-report", str(tmp_path / "missing.json")]) != 0


def test_a_whole_run_lists_its_runs_and_says_how_it_was_made():
    rep = _report()
    per_run = {"sequential/sasrec": {"time_per_epoch_s": 0.25, "epochs": 100, "fit_time_s": 30.0, "eval_time_s": 2.5,
                                     "concurrent_jobs": 2}}
    rep["benchmarks"] = [_bench("test_default_run", {}, {"per_run": per_run, "command": "pytest -m slow --json FILE"},
                                500.0)]
    text = render(rep, "results/perf/default_run.json")
    assert "pytest -m slow --json results/perf/default_run.json" in text
    assert "Adapter step" not in text  # no training-step benchmarks: no ratio section
    row = next(line for line in text.splitlines() if line.startswith("| sequential/sasrec"))
    assert [c.strip() for c in row.strip("|").split("|")] == ["sequential/sasrec", "0.25", "100", "30.0", "2.5", "2"]
