"""`bench tables`: Tables 2-5 from records — rows, bold best, daggers, notes, files."""

from __future__ import annotations

import csv
import io

import pytest
from fakes import fake_record, paper_like_records, placement_records, write_records

from bench.cli import main
from bench.report.render import render, render_document
from bench.report.tables import build_tables, efficiency_table, task_table


def _labels(table):
    return [r.label for r in table.rows()]


def test_table2_rows_seen_and_unseen_prompts_and_dagger():
    t = task_table(paper_like_records(), "sequential", "fake")
    assert _labels(t) == ["Pop", "SASRec", "P5 (A-3)", "VIP5 (A-3)", "P5 (A-9)", "VIP5 (A-9)"]
    assert t.columns == ["hr@5", "ndcg@5", "hr@10", "ndcg@10"]
    vip5 = [r for r in t.rows() if r.model == "vip5"]
    assert all(r.cells[3].dagger for r in vip5), "VIP5 is far stronger than SASRec: significant"
    assert all(any(r.cells[j].bold for r in vip5) for j in range(4)), "and the best"
    assert not any(c.bold for r in t.rows() if r.model != "vip5" for c in r.cells)
    assert not any(c.dagger for r in t.rows() if r.model != "vip5" for c in r.cells)
    assert all(r.seeds == 2 for r in t.rows())
    md = render(t, "md")
    assert "**" in md and "†" in md and " ± " in md
    notes = " ".join(t.notes)
    assert "Item indexing: random" in notes and "paired t-test" in notes and "(strongest baseline by NDCG@10)" in notes
    assert "A-3 seen in training, A-9 unseen" in notes


def test_no_dagger_when_vip5_matches_the_best_baseline():
    recs = paper_like_records(vip5_strength=0.1)
    p5 = {(r["seed"], r["prompt"]): r for r in recs if r["model"] == "p5" and r["task"] == "direct"}
    for r in recs:  # VIP5 answers exactly like P5, the strongest baseline
        if r["model"] == "vip5" and r["task"] == "direct":
            r["per_query"], r["metrics"] = (
                p5[(r["seed"], r["prompt"])]["per_query"],
                p5[(r["seed"], r["prompt"])]["metrics"],
            )
    t = task_table(recs, "direct", "fake")
    assert [r.label for r in t.rows()][:2] == ["Pop", "BPR-MF"]
    assert not any(c.dagger for r in t.rows() for c in r.cells)
    assert "VIP5 (B-5) vs P5 (B-5)" in " ".join(t.notes) and "p = 1" in " ".join(t.notes)
    assert "Candidates: stored per dataset: target + 99" in " ".join(t.notes)


def test_table4_splits_rows_with_and_without_feature_hint():
    t = task_table(paper_like_records(), "explanation", "fake")
    assert [b.title for b in t.blocks] == ["without feature hint", "with feature hint"]
    assert [r.label for r in t.blocks[0].rows] == ["PETER", "P5 (C-3)", "VIP5 (C-3)"]
    # the reference row retrieves by the record's feature word: it sits with the hinted rows
    assert [r.label for r in t.blocks[1].rows] == ["Most frequent (ref.)", "PETER+", "P5 (C-12)", "VIP5 (C-12)"]
    # bold is per block: each block has its own best
    assert all(any(r.cells[3].bold for r in b.rows) for b in t.blocks)
    notes = " ".join(t.notes)
    assert "corpus level on lower-cased word tokens (nltk" in notes and "characters" in notes
    assert "VIP5 (C-12) vs PETER+" in notes and "VIP5 (C-3) vs P5 (C-3)" in notes


def test_table5_reads_placement_variants_from_config_lower_is_better():
    t = efficiency_table(placement_records() + paper_like_records(), "fake")
    assert _labels(t) == ["Self-attention adapters", "Self- & cross-attention adapters", "Full fine-tuning"]
    rows = t.rows()
    assert [r.seeds for r in rows] == [2, 2, 2], "one value per run, not one per evaluation prompt"
    time, pct, mem = (rows[0].cells[j] for j in range(3))
    assert time.bold and pct.bold and mem.bold and not rows[2].cells[0].bold
    assert rows[2].cells[1].mean == pytest.approx(100.0)
    assert rows[0].extra == ["direct", "placement-self"]
    assert "cpu_peak_rss" in " ".join(t.notes)
    assert efficiency_table(paper_like_records(), "fake") is None, "untagged runs are not Table 5 variants"


def test_tex_and_csv_renderings():
    t = task_table(paper_like_records(), "direct", "fake")
    tex = render_document(t, "tex")
    assert r"\textbf{" in tex and r"$\pm$" in tex and r"$^\dagger$" in tex and r"\begin{tabular}" in tex
    assert "±" not in tex and "_" not in tex.replace(r"\_", "")
    rows = list(csv.DictReader(io.StringIO(render(t, "csv"))))
    vip5 = next(r for r in rows if r["method"] == "VIP5 (B-5)")
    assert float(vip5["ndcg@10"]) > 0 and vip5["significant"] == "ndcg@10" and "ndcg@10" in vip5["best"]
    assert {"hr@1", "hr@1_std", "seeds", "block"} <= set(rows[0])


def test_mixed_indexing_gives_separate_tables():
    recs = [fake_record("pop", "sequential", 1, strength=0.1),
            fake_record("pop", "sequential", 1, strength=0.2, indexing="sequential")]
    keys = [t.key for t in build_tables(recs, "fake")]
    assert keys == ["table2_sequential-random", "table2_sequential-sequential"]


def test_cli_tables_prints_and_writes_every_format(tmp_path, capsys):
    results = write_records(tmp_path / "results", paper_like_records() + placement_records()
                            + paper_like_records(seeds=(1,), dataset="other"))
    out = tmp_path / "tables"
    assert main(["tables", "--results-dir", str(results), "--out", str(out), "--format", "tex"]) == 0
    printed = capsys.readouterr().out
    assert r"\begin{tabular}" in printed and "Table 5" in printed
    for ds, n in (("fake", 4), ("other", 3)):
        files = sorted(p.name for p in (out / ds).iterdir())
        assert len(files) == 3 * n and all(any(f.endswith(e) for e in (".md", ".csv", ".tex")) for f in files)
    md = (out / "fake" / "table2_sequential.md").read_text()
    assert md.startswith("### Table 2: sequential recommendation — fake") and "| VIP5 (A-9)" in md


def test_cli_tables_unknown_names_exit_2(tmp_path, capsys):
    results = write_records(tmp_path / "results", [fake_record("pop", "direct", 1, strength=0.1)])
    assert main(["tables", "--results-dir", str(results), "--dataset", "nope"]) == 2
    assert "unknown dataset 'nope'; known datasets: fake\n(the datasets with records under" in capsys.readouterr().err
    assert main(["tables", "--results-dir", str(results), "--format", "xlsx"]) == 2
    assert "known formats: csv, md, tex" in capsys.readouterr().err
    assert main(["tables", "--results-dir", str(tmp_path / "empty")]) == 2
    assert "no run records" in capsys.readouterr().err


def test_runs_side_by_side_are_noted_under_the_table():
    alone = paper_like_records(seeds=(1,))
    assert not any("side by side" in n for t in build_tables(alone, "fake") for n in t.notes)
    shared = [r | {"concurrent_jobs": 2, "torch_threads": 1} for r in alone]
    notes = [n for t in build_tables(shared, "fake") if t.key != "table5_efficiency" for n in t.notes]
    assert sum("s/epoch measured with 2 run(s) side by side on one machine (1 torch thread(s) each)" in n
               for n in notes) == 3  # one per task table


def test_a_reused_training_shows_the_peak_and_side_by_side_count_of_the_job_that_trained_it():
    # placement-self+cross reused the training of another tag's job (same config): its own process
    # only evaluated, so its own 400 MB would make the adapters look cheaper than they train
    recs = placement_records()
    trainer = fake_record("vip5", "direct", 1, strength=0.5, prompt="B-5", tag="multimodal-multimodal", memory=1300)
    trainer |= {"training": {"id": "vip5-abc", "reused": False}, "concurrent_jobs": 2}
    for r in recs:
        if r["tag"] == "placement-self+cross":
            r |= {"memory_kind": "cpu_peak_rss", "peak_memory_mb": 400.0, "concurrent_jobs": 1,
                  "training": {"id": "vip5-abc" if r["seed"] == 1 else "vip5-def", "reused": True}}
    table = efficiency_table([*recs, trainer], "fake")
    (row,) = [r for r in table.blocks[0].rows if r.extra[1] == "placement-self+cross"]
    memory = row.cells[table.columns.index("peak_memory_mb")]
    assert memory.mean == pytest.approx((1300 + 400) / 2)  # seed 2's trainer is not among the records: kept
    assert any("2 run(s) side by side" in n for n in table.notes)


def test_the_sequential_note_says_whether_each_rows_rankings_left_the_history_out():
    def note(flags):
        recs = []
        for model, flag in flags.items():
            rec = fake_record(model, "sequential", 1, strength=0.2)
            if flag is not None:
                rec["history_excluded"] = flag
            recs.append(rec)
        return " ".join(build_tables(recs, "fake")[0].notes)

    assert "Every ranking leaves the user's history out" in note({"pop": True, "sasrec": True})
    assert "Rankings include the user's history items" in note({"pop": False, "sasrec": None})  # None: older records
    assert "left out of the rankings of Pop, not of SASRec" in note({"pop": True, "sasrec": None})
    direct = build_tables([fake_record("pop", "direct", 1, strength=0.2)], "fake")[0].notes
    assert not any("history" in n for n in direct)  # candidates are never history items
