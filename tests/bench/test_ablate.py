"""`bench ablate`: study planning, skips when the data lacks what a study needs, tagged runs,
tables and figures (with a fast stand-in for VIP5; the real VIP5 sweep is a slow test)."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import fake_record

from bench.cli import main
from bench.report.studies import STUDIES, study_figure, study_records, study_tables
from bench.studies.ablate import settings, skip_reason

PNG = b"\x89PNG\r\n\x1a\n"


def test_study_settings_match_the_paper_figures():
    def labels(name, feats=()):
        return [label for label, _ in settings(STUDIES[name], list(feats))]

    assert labels("multimodal") == ["text-only", "multimodal"]
    assert [ov for _, ov in settings(STUDIES["multimodal"], [])] == [{"image_tokens": "0"}, {"image_tokens": "2"}]
    assert labels("placement") == ["self", "self+cross", "full"]
    assert settings(STUDIES["placement"], [])[2][1] == {"train_mode": "full"}
    assert labels("reduction") == ["1", "2", "4", "8", "16"]
    assert labels("image-tokens") == ["1", "2", "3", "5"]
    assert labels("encoder", ["rn50", "vitb32"]) == ["rn50", "vitb32"]


def test_skip_reasons_name_what_is_missing():
    assert "needs at least two" in skip_reason(STUDIES["encoder"], "d", ["synthetic"], 150)
    assert "bench features --dataset d --encoder" in skip_reason(STUDIES["encoder"], "d", ["synthetic"], 150)
    no_vis = skip_reason(STUDIES["multimodal"], "d", [], 0)
    assert "no item images and no visual features" in no_vis and "--from-vip5" in no_vis
    assert skip_reason(STUDIES["reduction"], "d", [], 0) is None, "adapters need no images (runs text-only)"
    assert skip_reason(STUDIES["encoder"], "d", ["a", "b"], 0) is None


def test_encoder_study_skips_on_one_feature_set(tiny_root, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["ablate", "--study", "encoder", "--dataset", "tiny", "--data-root", str(tiny_root),
                 "--results-dir", str(results), "--out", str(tmp_path / "abl")]) == 0
    out = capsys.readouterr().out
    assert "study 'encoder' skipped: dataset 'tiny' has 1 visual feature set(s) (synthetic)" in out
    assert not results.exists(), "nothing ran"


def test_visual_studies_skip_on_a_dataset_without_images(tmp_path, capsys):
    seq = tmp_path / "seqs.txt"
    rng = np.random.default_rng(0)
    seq.write_text("".join(f"u{u} " + " ".join(f"i{i}" for i in rng.choice(200, 8, replace=False)) + "\n"
                           for u in range(30)))
    root = tmp_path / "data"
    assert main(["data", "import", str(seq), "--name", "plain", "--data-root", str(root)]) == 0
    capsys.readouterr()
    assert main(["ablate", "--study", "multimodal,image-tokens", "--dataset", "plain", "--data-root", str(root),
                 "--results-dir", str(tmp_path / "r"), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "study 'multimodal' skipped: dataset 'plain' has no item images and no visual features" in out
    assert "study 'image-tokens' skipped" in out


@pytest.mark.parametrize("argv,needle", [
    (["--study", "colour"],
     "unknown study 'colour'; known studies: encoder, image-tokens, multimodal, placement, reduction"),
    (["--study", "reduction", "--model", "pop"], "study 'reduction' sets reduction_factor, which model 'pop' has no"),
    (["--study", "multimodal", "--set", "image_tokens=1"], "--set image_tokens: study 'multimodal' varies this key"),
    (["--study", "reduction", "--model", "vip5x"], "unknown model 'vip5x'"),
])
def test_bad_ablate_arguments_exit_2(argv, needle, tiny_root, tmp_path, capsys):
    assert main(["ablate", *argv, "--dataset", "tiny", "--data-root", str(tiny_root),
                 "--results-dir", str(tmp_path / "r")]) == 2
    assert needle in capsys.readouterr().err


def test_tables_and_figure_from_tagged_records():
    recs = []
    for r in ("16", "8", "1"):
        for task, prompts in (("direct", ("B-5", "B-8")), ("explanation", ("C-3", "C-12"))):
            for p in prompts:
                recs += [fake_record("vip5", task, s, strength=0.3 + int(r) / 100, prompt=p, tag=f"reduction-{r}")
                         for s in (1, 2)]
    recs.append(fake_record("vip5", "direct", 1, strength=0.3, prompt="B-5"))  # untagged: not part of the study
    assert list(study_records(recs, "reduction")) == ["1", "8", "16"], "the study's order, not string order"
    tables = study_tables(recs, "reduction", "fake")
    assert [t.key for t in tables] == ["reduction_direct", "reduction_explanation"]
    assert [(r.label, r.extra[0]) for r in tables[0].rows()][:2] == [("1", "B-5"), ("1", "B-8")]
    png = study_figure(recs, "reduction", "fake")
    assert png.startswith(PNG) and len(png) > 5000
    assert study_figure(recs, "encoder", "fake") is None


def test_ablate_runs_tagged_settings_and_writes_table_and_figure(fake_model, tiny_root, tmp_path, capsys):
    results, out = tmp_path / "results", tmp_path / "abl"
    argv = ["ablate", "--study", "multimodal", "--task", "direct", "--model", fake_model, "--dataset", "tiny",
            "--data-root", str(tiny_root), "--results-dir", str(results), "--out", str(out), "--seeds", "1",
            "--device", "cpu"]
    assert main(argv) == 0
    runs = sorted(
        p.relative_to(results / "runs" / "tiny" / "direct").as_posix() for p in (results / "runs").rglob("*.json")
    )
    assert runs == ["fakevip5+multimodal-multimodal/seed1__B-5.json", "fakevip5+multimodal-multimodal/seed1__B-8.json",
                    "fakevip5+multimodal-text-only/seed1__B-5.json", "fakevip5+multimodal-text-only/seed1__B-8.json"]
    files = sorted(p.name for p in (out / "tiny").iterdir())
    assert files == ["multimodal.md", "multimodal.png", "multimodal_direct.csv", "multimodal_direct.tex"]
    assert (out / "tiny" / "multimodal.png").read_bytes().startswith(PNG)
    md = (out / "tiny" / "multimodal.md").read_text()
    assert "Figure 3 analogue: Text-only vs multimodal prompts" in md and "| text-only" in md and "| multimodal" in md
    assert "image_tokens=0" in md and "image_tokens=2" in md
    # --plot-only redraws from the records without running anything
    (out / "tiny" / "multimodal.png").unlink()
    capsys.readouterr()
    assert main([*argv, "--plot-only"]) == 0
    assert (out / "tiny" / "multimodal.png").exists() and "=== [" not in capsys.readouterr().err


@pytest.mark.slow
def test_vip5_multimodal_study_on_the_tiny_dataset(tiny_root, tmp_path):
    """The real thing: VIP5 text-only vs multimodal prompts, one cheap epoch each."""
    results, out = tmp_path / "results", tmp_path / "abl"
    sets = ["backbone_init=random", "epochs=1", "beams=10", "direct_samples_per_user=1", "vocab_size=300"]
    assert (
        main(
            [
                "ablate",
                "--study",
                "multimodal",
                "--task",
                "direct",
                "--dataset",
                "tiny",
                "--data-root",
                str(tiny_root),
                "--results-dir",
                str(results),
                "--out",
                str(out),
                "--seeds",
                "1",
                "--device",
                "cpu",
                *[x for s in sets for x in ("--set", s)],
            ]
        )
        == 0
    )
    assert (out / "tiny" / "multimodal.png").read_bytes().startswith(PNG)
    assert len(list((results / "runs" / "tiny" / "direct").rglob("vip5+multimodal-*/seed1__B-8.json"))) == 2


def test_study_notes_draw_the_no_model_level_and_say_what_is_significant():
    recs = [fake_record("pop", "direct", 1, strength=0.2, n=400)]
    for label, strength in (("text-only", 0.3), ("multimodal", 0.6)):  # far apart: significant
        recs += [fake_record("vip5", "direct", s, strength=strength, prompt=p, n=400, tag=f"multimodal-{label}")
                 for s in (1, 2, 3) for p in ("B-5", "B-8")]
    notes = " ".join(study_tables(recs, "multimodal", "fake")[0].notes)
    pop_hr10 = recs[0]["metrics"]["hr@10"]
    assert "No-model level (pop): " in notes and f"hr@10 {pop_hr10:.4f}" in notes
    assert "against `text-only`: multimodal +" in notes and "1 of 1 difference(s) significant at p < 0.05" in notes
    alone = [r for r in recs if r.get("tag") != "multimodal-multimodal"]  # one setting left: nothing to test
    assert not any("Paired test" in n for n in study_tables(alone, "multimodal", "fake")[0].notes)
    # the same runs under both settings: no difference at all
    twin = recs[:1] + [dict(r, tag=t) for r in recs[1:7] for t in ("multimodal-text-only", "multimodal-multimodal")]
    assert "no difference is significant" in " ".join(study_tables(twin, "multimodal", "fake")[0].notes)
    assert study_figure(recs, "multimodal", "fake").startswith(PNG)
