"""`bench reproduce`: runs, ablations, tables, report and reference in one command (tiny settings)."""

from __future__ import annotations

import pytest

from bench.cli import main


def test_reproduce_runs_tables_report_and_reference(tiny_root, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["reproduce", "--dataset", "tiny", "--data-root", str(tiny_root), "--task", "direct", "--models", "pop",
                 "--studies", "none", "--seeds", "1", "--device", "cpu", "--results-dir", str(results)]) == 0
    for f in ("runs/tiny/direct/pop/seed1.json", "tables/tiny/table3_direct.md", "tables/tiny/table3_direct.tex",
              "tables/tiny/table3_direct.csv", "report.html", "reference/runs/tiny/direct/pop/seed1.json"):
        assert (results / f).is_file(), f
    assert not (results / "ablations").exists()
    capsys.readouterr()
    assert main(["check", "--results-dir", str(results), "--reference", str(results / "reference")]) == 0


@pytest.mark.slow
def test_reproduce_regenerates_every_output(fake_model, tiny_root, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["reproduce", "--dataset", "tiny", "--data-root", str(tiny_root), "--task", "direct", "--models", "pop",
                 "--studies", "multimodal", "--ablation-model", fake_model, "--seeds", "1", "--device", "cpu",
                 "--results-dir", str(results)]) == 0
    runs = sorted(p.parent.name for p in (results / "runs" / "tiny" / "direct").rglob("*.json"))
    assert runs == ["fakevip5+multimodal-multimodal"] * 2 + ["fakevip5+multimodal-text-only"] * 2 + ["pop"]
    for f in ("tables/tiny/table3_direct.md", "tables/tiny/table3_direct.tex", "tables/tiny/table3_direct.csv",
              "ablations/tiny/multimodal.png", "ablations/tiny/multimodal.md", "report.html"):
        assert (results / f).is_file(), f
    assert "data:image/png;base64," in (results / "report.html").read_text()
    assert len(list((results / "reference" / "runs" / "tiny").rglob("*.json"))) == 5
    capsys.readouterr()
    # the fresh reference is what `bench check` compares against
    assert main(["check", "--results-dir", str(results), "--reference", str(results / "reference")]) == 0


def test_reproduce_checks_names_before_running(tiny_root, tmp_path, capsys):
    argv = ["reproduce", "--dataset", "tiny", "--data-root", str(tiny_root), "--results-dir", str(tmp_path / "r")]
    assert main([*argv, "--studies", "colour"]) == 2
    assert "unknown study 'colour'" in capsys.readouterr().err
    assert main([*argv, "--studies", "reduction", "--ablation-model", "pop"]) == 2
    assert "which model 'pop' has no config key" in capsys.readouterr().err
    assert main([*argv, "--models", "nope"]) == 2
    assert not (tmp_path / "r").exists()


def test_model_scoped_sets_reach_that_model_only_and_win_over_plain_ones():
    from bench.run.plan import model_sets

    sets = {"epochs": "3", "p5.epochs": "16", "vip5.backbone_epochs": "16", "hidden": "8"}
    assert model_sets("p5", sets) == {"epochs": "16"}
    assert model_sets("vip5", sets) == {"epochs": "3", "backbone_epochs": "16"}
    assert model_sets("sasrec", sets) == {"epochs": "3", "hidden": "8"}

