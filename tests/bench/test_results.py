"""Record and checkpoint paths: one per (dataset, task, model+tag, seed, prompt, indexing)."""

from __future__ import annotations

from pathlib import Path

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
