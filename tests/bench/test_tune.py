"""`bench tune`: grid on validation, stored choice, reused by `bench run --tuned`."""

import json

import pytest

from bench.cli import main
from bench.config import load_tuned
from bench.errors import UsageError
from bench.registry import get_model
from bench.run.runner import plan_run
from bench.studies.tune import parse_grid


def test_parse_grid_from_options_or_model_grid():
    assert parse_grid(["lr=0.1,0.01", "factors=8"], None) == {"lr": ["0.1", "0.01"], "factors": ["8"]}
    assert parse_grid(None, {"lr": [0.1, 0.01]}) == {"lr": ["0.1", "0.01"]}
    with pytest.raises(UsageError, match="no TUNE_GRID"):
        parse_grid(None, None)


def test_tune_stores_the_best_validation_config_and_run_uses_it(tiny_root, tmp_path):
    results = tmp_path / "results"
    argv = ["tune", "--model", "bpr_mf", "--task", "direct", "--grid", "factors=4,16", "--epochs", "3",
            "--data-root", str(tiny_root), "--results-dir", str(results), "--device", "cpu", "--dataset", "tiny"]
    assert main(argv) == 0
    stored = json.loads((results / "tuned" / "tiny" / "direct" / "bpr_mf.json").read_text())
    assert stored["best"]["factors"] in ("4", "16") and stored["monitor"] == "ndcg@10"
    trials = sorted(p.parent.name for p in (results / "tune").rglob("seed*.json"))
    assert trials == ["bpr_mf+tune-factors=16", "bpr_mf+tune-factors=4"]
    # the stored choice is the one with the higher validation score
    vals = {
        p.parent.name: json.loads(p.read_text())["val_metrics"]["ndcg@10"]
        for p in (results / "tune").rglob("seed*.json")
    }
    assert vals[f"bpr_mf+tune-factors={stored['best']['factors']}"] == max(vals.values())
    assert load_tuned(results, "tiny", "direct", "bpr_mf", get_model("bpr_mf").config) == stored["best"]
    plan = plan_run(task="direct", dataset="tiny", models=["bpr_mf"], seeds=[1], overrides={"lr": "0.05"},
                    data_root_=str(tiny_root), results_dir=str(results), tuned=True)
    assert plan.tuned[("direct", "bpr_mf")] == stored["best"]


def test_run_tuned_refuses_a_tuned_file_with_an_unknown_key(tiny_root, tmp_path):
    # e.g. a key renamed in the model's config since the file was written: it would be dropped silently
    path = tmp_path / "results" / "tuned" / "tiny" / "direct" / "bpr_mf.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"best": {"factors": "16", "n_factors": "8"}}))
    with pytest.raises(UsageError, match="unknown config key") as e:
        plan_run(task="direct", dataset="tiny", models=["bpr_mf"], seeds=[1], overrides={},
                 data_root_=str(tiny_root), results_dir=str(tmp_path / "results"), tuned=True)
    msg = str(e.value)
    assert str(path) in msg and "n_factors for bpr_mf" in msg and "fix: tune again" in msg
    assert main(["run", "--task", "direct", "--models", "bpr_mf", "--dataset", "tiny", "--tuned",
                 "--data-root", str(tiny_root), "--results-dir", str(tmp_path / "results")]) == 2
