"""The paper's reported rows beside a dataset's runs, and the rows below the no-model level."""

from __future__ import annotations

from fakes import paper_like_records

from bench.report.paper import paper_datasets, paper_results
from bench.report.render import render, render_document
from bench.report.tables import task_table
from bench.tasks import TASKS


def test_paper_rows_are_the_papers_tables():
    # a few cells read by hand from the paper (Tables 2, 3 and 4; MFM is VIP5)
    tables = paper_results()["tables"]
    assert paper_datasets() == ["beauty", "clothing", "sports", "toys"]
    hgn = tables["sequential"]["beauty"][0]
    assert (hgn["model"], hgn["prompt"], hgn["metrics"]["hr@10"]) == ("hgn", None, 0.0512)
    vip5_b8 = next(r for r in tables["direct"]["sports"] if r["model"] == "vip5" and r["prompt"] == "B-8")
    assert vip5_b8["metrics"] == {"hr@1": 0.0699, "hr@5": 0.1882, "ndcg@5": 0.1304, "hr@10": 0.2717, "ndcg@10": 0.1572}
    peter_plus = next(r for r in tables["explanation"]["toys"] if r["model"] == "peter_plus")
    assert peter_plus["metrics"]["bleu-4"] == 4.7919 and peter_plus["metrics"]["rouge-l"] == 22.7017
    for task, by_dataset in tables.items():  # every row has exactly the task's metrics
        for rows in by_dataset.values():
            assert all(set(r["metrics"]) == set(TASKS[task].metrics) for r in rows)


def test_a_paper_dataset_gets_the_papers_rows_in_their_own_block():
    t = task_table(paper_like_records(dataset="Beauty"), "direct", "Beauty")
    measured, paper = t.blocks
    assert not measured.reported and paper.reported
    assert "not run here; sequential indexing" in paper.title
    assert [r.label for r in paper.rows][:3] == ["BPR-MF", "BPR-MLP", "VBPR"]
    assert all(r.seeds == "paper" and r.model == "" for r in paper.rows)
    assert not any(c.bold or c.dagger for r in paper.rows for c in r.cells), "quoted, not ranked or tested"
    assert paper.rows[0].cells[t.columns.index("hr@10")].mean == 0.2573
    assert [r.label for r in t.measured_rows()] == [r.label for r in measured.rows]
    md = render_document(t, "md")
    assert "| BPR-MF " in md and "| paper " in md and "Transcribed from the paper" in md
    assert "reported in the paper" in render(t, "tex") and "paper" in render(t, "csv")
    assert task_table(paper_like_records(), "direct", "fake").blocks[-1].reported is False


def test_rows_below_pop_are_listed_under_the_table():
    t = task_table(paper_like_records(), "direct", "fake")
    assert not any(n.startswith("Below Pop") for n in t.notes), "every fake model beats pop"
    recs = paper_like_records()
    for r in recs:  # P5 falls under pop on HR@10 only
        if r["model"] == "p5" and r["task"] == "direct":
            r["metrics"]["hr@10"] = 0.01
    t = task_table(recs, "direct", "fake")
    below = [n for n in t.notes if n.startswith("Below Pop")]
    assert len(below) == 1
    assert "P5 (B-5) (HR@10 0.0100 < " in below[0] and "P5 (B-8) (HR@10" in below[0]
    assert "NDCG@10" not in below[0] and "VIP5" not in below[0]
    assert below[0].count(", p = ") == 2, "each below-pop cell with its paired test over the same users"


def test_explanations_compare_only_the_hinted_block_with_the_reference():
    recs = paper_like_records()
    for r in recs:  # everything scores under the retrieval reference on ROUGE-L
        if r["task"] == "explanation" and r["model"] != "explain_ref":
            r["metrics"]["rouge-l"] = 0.0
    t = task_table(recs, "explanation", "fake")
    below = next(n for n in t.notes if n.startswith("Below Most frequent (ref.)"))
    assert "PETER+" in below and "P5 (C-12)" in below
    assert "P5 (C-3)" not in below and "PETER (" not in below, "the block without the hint has no reference row"
    assert "ROUGE-L 0.00 < " in below and ", p = " in below and "BLEU" not in below


def test_the_run_table_marks_rows_below_pop():
    from bench.report.run_table import comparison_table

    recs = [r for r in paper_like_records() if r["task"] == "direct"]
    assert "below pop" not in comparison_table(recs, "direct")
    for r in recs:
        if r["model"] == "p5":
            r["metrics"]["ndcg@10"] = 0.0
    lines = [ln for ln in comparison_table(recs, "direct").splitlines() if "below pop" in ln]
    assert len(lines) == 2 and all(ln.startswith("| p5 ") and "↓ below pop (NDCG@10)" in ln for ln in lines)
