"""Every `bench run` value is checked before a job starts (one line, exit 2, the fix; a traceback only
with --verbose), and jobs the dataset cannot serve are left out with the command that fixes it."""

from __future__ import annotations

import dataclasses

import pytest

from bench.cli import main
from bench.run import runner


def _no_jobs(*_a, **_k):
    raise AssertionError("no job may start")


def _run_argv(tiny_root, results, *extra):
    return ["run", "--task", "direct", "--dataset", "tiny", "--models", "pop,bpr_mlp", "--device", "cpu",
            "--data-root", str(tiny_root), "--results-dir", str(results), *extra]


@pytest.mark.parametrize("extra,option", [
    (["--epochs", "0"], "--epochs 0"),
    (["--epochs", "-3"], "--epochs -3"),
    (["--set", "lr=-1"], "--set lr=-1"),
    (["--set", "batch_size=0"], "--set batch_size=0"),
    (["--set", "dropout=1.5"], "--set dropout=1.5"),
    (["--seeds", "1,-1"], "--seeds 1,-1"),
    (["--dataset", "../evil"], "--dataset '../evil'"),
    (["--tag", "../../x"], "--tag '../../x'"),
])
def test_bad_values_exit_2_with_one_line_before_any_job(extra, option, tiny_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "_run_child", _no_jobs)
    results = tmp_path / "results"
    assert main(_run_argv(tiny_root, results, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option}") and err.count("\n") == 1, err
    assert "fix: " in err and "Traceback" not in err
    assert not results.exists(), "nothing is written for a refused command"


def test_verbose_shows_the_traceback_of_an_expected_error(tiny_root, tmp_path, capsys):
    assert main(["--verbose", *_run_argv(tiny_root, tmp_path / "r", "--epochs", "0")]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main([*_run_argv(tiny_root, tmp_path / "r", "--epochs", "0"), "--verbose"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_unwritable_results_dir_is_refused_before_training(tiny_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "_run_child", _no_jobs)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(_run_argv(tiny_root, blocker / "results")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --results-dir {blocker / 'results'}: not writable") and err.count("\n") == 1


def test_cuda_without_cuda_is_refused_before_training(tiny_root, tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setattr(runner, "_run_child", _no_jobs)
    assert main([*_run_argv(tiny_root, tmp_path / "r"), "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err


def test_every_default_config_value_passes_the_range_rules():
    from bench.config import build_config, check_value
    from bench.registry import all_models

    for spec in all_models().values():
        cfg = spec.config()
        for f in dataclasses.fields(cfg):
            check_value(spec.config, f.name, getattr(cfg, f.name), getattr(cfg, f.name))
        for values in getattr(spec.cls, "DATASET_DEFAULTS", {}).values():
            build_config(spec.config, values, strict=False)


# ------------------------------------------------------------------------------- data needs


@pytest.fixture(scope="module")
def plain_root(tmp_path_factory):
    """A dataset imported from a plain sequence file: no attributes, no features, no reviews."""
    import random

    root = tmp_path_factory.mktemp("plain")
    rng = random.Random(0)
    seqs = root / "seqs.txt"
    seqs.write_text(
        "".join(" ".join([f"u{u}"] + [f"i{rng.randrange(200)}" for _ in range(8)]) + "\n" for u in range(60))
    )
    assert main(["data", "import", str(seqs), "--name", "plain", "--data-root", str(root / "data")]) == 0
    return root / "data"


def test_jobs_the_dataset_cannot_serve_are_not_started_and_say_the_fix(plain_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "_run_child", _no_jobs)
    argv = [
        "run",
        "--dataset",
        "plain",
        "--models",
        "s3rec,vbpr,vip5",
        "--device",
        "cpu",
        "--data-root",
        str(plain_root),
        "--results-dir",
        str(tmp_path / "results"),
    ]
    assert main(argv) == 2  # nothing could start
    out, err = capsys.readouterr()
    assert "not started  s3rec · sequential · seed 2022: s3rec needs item attributes" in err  # the plan
    assert "| s3rec " in out and "not started: s3rec needs item attributes, dataset 'plain' has none" in out
    assert ("not started: vbpr · direct · seed 2022: vbpr needs item features, dataset 'plain' has none; "
            "fix: python -m bench features --dataset plain") in out
    assert "vip5 needs item features" in out and "--set image_tokens=0" in out
    assert "Traceback" not in out + err


def test_data_needs_follow_the_config():
    from bench.registry import data_needs, get_model

    vip5, p5 = get_model("vip5"), get_model("p5")
    assert data_needs(vip5, vip5.config()) == ["features"]
    assert data_needs(vip5, vip5.config(image_tokens=0)) == []
    assert data_needs(p5, p5.config()) == []
    assert data_needs(p5, p5.config(image_tokens=2)) == ["features"]
    assert data_needs(get_model("s3rec"), get_model("s3rec").config()) == ["attributes"]
