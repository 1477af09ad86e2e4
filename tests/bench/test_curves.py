"""`bench curves`: one learning curve per training, from the records' histories."""

from __future__ import annotations

from fakes import fake_record, write_records

from bench.cli import main
from bench.report.curves import curve_table, curves


def _history(n: int, multitask: bool = False) -> list[dict]:
    rows = []
    for e in range(1, n + 1):
        val = ({"sequential/ndcg@10": 0.01 * e, "direct/ndcg@10": 0.02 * e, "mean": 0.015 * e} if multitask
               else {"ndcg@10": 0.1 * e, "hr@10": 0.2 * e})
        row = {"epoch": e, "loss": 3.0 / e, "train_s": 1.5, "val": val}
        rows.append(row | ({"steps": 10 * e} if multitask else {}))
    return rows


def _records() -> list[dict]:
    recs = []
    for task, prompt in (("sequential", "A-3"), ("sequential", "A-9"), ("direct", "B-5")):  # one shared training
        r = fake_record("p5", task, 1, strength=0.3, prompt=prompt)
        r |= {"history": _history(3, multitask=True), "monitor": "mean", "still_improving": True,
              "training": {"id": "p5-abc", "tasks": ["sequential", "direct"]}}
        recs.append(r)
    sas = fake_record("sasrec", "sequential", 1, strength=0.4) | {"history": _history(2), "monitor": "ndcg@10"}
    pop = fake_record("pop", "sequential", 1, strength=0.1) | {"history": [{"epoch": 1, "train_s": 0.1}]}
    tagged = fake_record("sasrec", "sequential", 1, strength=0.4, tag="x") | {"history": _history(2)}
    return recs + [sas, pop, tagged]


def test_one_curve_per_training_untagged_and_iterative_only():
    cs = curves(_records())
    assert [c.label for c in cs] == ["P5 · seed 1 · training p5-abc", "SASRec · seed 1 · sequential"]
    assert cs[0].tasks == ["direct", "sequential"] and "still improving" in cs[0].marks
    assert curves(_records(), ["sasrec"])[0].label.startswith("SASRec")


def test_curve_table_columns():
    p5, sas = curves(_records())
    lines = curve_table(p5).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "epoch", "optimizer steps", "train s", "loss", "val mean", "val direct/ndcg@10", "val sequential/ndcg@10"]
    assert [c.strip() for c in lines[-1].split("|")[1:-1]] == ["3", "30", "1.5", "1.0000", "0.0450", "0.0600", "0.0300"]
    head = curve_table(sas).splitlines()[0]
    assert "optimizer steps" not in head and "val ndcg@10" in head and "hr@10" not in head, "the monitored metric only"


def test_cli_writes_page_and_figure(tmp_path, capsys):
    write_records(tmp_path, _records())
    out = tmp_path / "curves"
    assert main(["curves", "--results-dir", str(tmp_path), "--out", str(out)]) == 0
    page = (out / "fake.md").read_text()
    assert "## P5 · seed 1 · training p5-abc ↑ still improving" in page and "Used by: direct, sequential." in page
    assert (out / "fake.png").read_bytes()[:4] == b"\x89PNG"
    assert "2 learning curve(s) written" in capsys.readouterr().out
    assert main(["curves", "--results-dir", str(tmp_path), "--out", str(out), "--models", "nope"]) == 2
