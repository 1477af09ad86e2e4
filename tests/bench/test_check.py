"""`bench check`: direction-aware comparison with reference records, non-zero exit on a regression."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import fake_record, write_records

from bench.cli import main
from bench.run.worker import run_one
from bench.studies.check import QUICK_DATASET, TOLERANCES, _config_overrides, allowed, compare

REPO = Path(__file__).resolve().parents[2]


def _rec(model, task, metrics, seed=1, n=1000):
    return {
        "model": model,
        "task": task,
        "dataset": "d",
        "seed": seed,
        "prompt": None,
        "tag": None,
        "indexing": "random",
        "metrics": metrics,
        "per_query": {"n": n},
    }


def test_every_reported_metric_has_a_tolerance():
    from bench.metrics import HIGHER_IS_BETTER

    assert set(HIGHER_IS_BETTER) <= set(TOLERANCES)
    assert allowed("hr@10", 0.5, n=1000) == pytest.approx(0.025)  # 5% relative
    assert allowed("hr@10", 0.01, n=1000) == pytest.approx(0.005)  # absolute floor
    assert allowed("hr@10", 0.01, n=80) == pytest.approx(1 / 80)  # one query's worth on a small test set
    assert allowed("bleu-4", 1.0, n=80) == pytest.approx(0.25)  # text metrics have no per-query floor


def test_compare_is_direction_aware():
    ref = [_rec("m", "explanation", {"rouge-l": 30.0, "rmse": 1.00, "mae": 0.80}),
           _rec("m", "direct", {"hr@10": 0.30, "ndcg@10": 0.15})]
    cur = [_rec("m", "explanation", {"rouge-l": 29.8, "rmse": 1.20, "mae": 0.50}),
           _rec("m", "direct", {"hr@10": 0.25, "ndcg@10": 0.20})]
    status = {(d.key[1], d.metric): d.status for d in compare(ref, cur)}
    assert status == {("explanation", "rouge-l"): "ok", ("explanation", "rmse"): "REGRESSION",
                      ("explanation", "mae"): "better", ("direct", "hr@10"): "REGRESSION",
                      ("direct", "ndcg@10"): "better"}


def test_compare_reports_missing_new_and_incomparable_runs():
    ref = [_rec("a", "direct", {"hr@10": 0.3}), _rec("b", "direct", {"hr@10": 0.3})]
    cur = [_rec("a", "direct", {"hr@10": 0.3}) | {"indexing": "sequential"}, _rec("c", "direct", {"hr@10": 0.3})]
    status = {d.key[2]: d.status for d in compare(ref, cur)}
    assert status == {"a": "NOT COMPARABLE", "b": "MISSING", "c": "new"}
    # seeds both sides have are compared; a seed only the reference has is ignored
    ref2 = [_rec("a", "direct", {"hr@10": 0.3}, seed=1), _rec("a", "direct", {"hr@10": 0.9}, seed=2)]
    assert [d.status for d in compare(ref2, [_rec("a", "direct", {"hr@10": 0.3}, seed=1)])] == ["ok"]


def _run(results: Path, root: Path, model: str, overrides: dict) -> None:
    run_one({"model": model, "task": "direct", "dataset": "tiny", "seed": 1, "device": "cpu", "data_root": str(root),
             "results_dir": str(results), "overrides": overrides})


def test_check_fails_when_a_model_is_weakened_and_passes_unchanged(tiny_root, tmp_path, capsys):
    ref, same, weak = tmp_path / "ref", tmp_path / "same", tmp_path / "weak"
    for model, ov in (("pop", {}), ("vbpr", {"epochs": 10})):
        _run(ref, tiny_root, model, ov)
        _run(same, tiny_root, model, ov)
    _run(weak, tiny_root, "pop", {})
    _run(weak, tiny_root, "vbpr", {"epochs": 1, "lr": 1e-7})  # crippled: one epoch at a vanishing learning rate
    rec = json.loads(next((ref / "runs").rglob("vbpr/seed1.json")).read_text())
    assert len(rec["per_query"]["ranks"]) == 80, "records carry per-query ranks"
    capsys.readouterr()

    assert main(["check", "--reference", str(ref), "--results-dir", str(same)]) == 0
    assert "OK: no regression" in capsys.readouterr().out

    assert main(["check", "--reference", str(ref), "--results-dir", str(weak)]) == 1
    out = capsys.readouterr().out
    regressions = [line for line in out.splitlines() if line.startswith("|") and "REGRESSION" in line]
    assert regressions and all("| vbpr" in line for line in regressions), out
    assert any("| ndcg@10" in line for line in regressions) and "FAILED" in out


def test_write_reference_then_check_and_missing_run(tmp_path, capsys):
    cur = write_records(tmp_path / "cur", [fake_record("pop", "direct", 1, strength=0.2),
                                           fake_record("sasrec", "sequential", 1, strength=0.3)])
    ref = tmp_path / "ref"
    assert main(["check", "--reference", str(ref), "--results-dir", str(cur), "--write-reference"]) == 0
    assert len(list((ref / "runs").rglob("*.json"))) == 2
    assert main(["check", "--reference", str(ref), "--results-dir", str(cur)]) == 0
    next((cur / "runs").rglob("sasrec/*.json")).unlink()
    capsys.readouterr()
    assert main(["check", "--reference", str(ref), "--results-dir", str(cur)]) == 1
    assert "MISSING" in capsys.readouterr().out
    assert main(["check", "--reference", str(tmp_path / "none"), "--results-dir", str(cur)]) == 2
    assert main(["check", "--quick", "--rerun"]) == 2


def test_rerun_overrides_reproduce_the_recorded_config():
    rec = fake_record("vbpr", "direct", 1, strength=0.1)
    rec["config"] = {"lr": 1e-7, "epochs": 1, "factors": 32, "visual_encoder": None, "normalize_features": False}
    assert _config_overrides(rec) == {"lr": "1e-07", "epochs": "1", "normalize_features": "false"}


def test_rerun_runs_the_reference_configurations_again(tiny_root, tmp_path, capsys):
    ref = tmp_path / "ref"
    _run(ref, tiny_root, "pop", {})
    fresh = tmp_path / "fresh"
    assert main(["check", "--rerun", "--reference", str(ref), "--results-dir", str(fresh),
                 "--data-root", str(tiny_root)]) == 0
    assert "OK: no regression" in capsys.readouterr().out
    assert list((fresh / "runs" / "tiny" / "direct" / "pop").glob("seed1.json"))


def test_committed_quick_reference_covers_the_quick_runs():
    from bench.results import load_records
    from bench.studies.check import QUICK_RUNS

    recs = load_records(REPO / "results" / "reference", QUICK_DATASET)
    assert {(r["task"], r["model"]) for r in recs} == {(t, m) for t, m, _ in QUICK_RUNS}


def test_quick_check_passes_against_the_committed_reference():
    """CI's quick check: six small runs on ci-tiny against the committed records (~1 min)."""
    proc = subprocess.run([sys.executable, "-m", "bench", "check", "--quick"], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "OK: no regression" in proc.stdout
