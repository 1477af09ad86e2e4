"""Small catalogues import (the direct task is then disabled, with the reason a planner can show);
users who have seen every item break no sampler; rejected inputs name the file, the line and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data import Item, User, load_dataset, write_dataset
from bench.data.dataset import dataset_task_support
from bench.data.importers import import_path
from bench.errors import DataFormatError, MissingDataError
from bench.train import FitLog


def _small_file(path, n_users=30, n_items=50):
    rng = np.random.default_rng(0)
    lines = [f"u{u} " + " ".join(f"i{i}" for i in rng.choice(n_items, 6, replace=False)) for u in range(n_users)]
    lines.append("cover " + " ".join(f"i{i}" for i in range(n_items)))  # every item, one user who saw them all
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_50_item_catalogue_imports_for_the_sequential_task_only(tmp_path):
    import_path(_small_file(tmp_path / "s.txt"), tmp_path / "root", "small")
    d = load_dataset("small", tmp_path / "root")
    assert d.n_items == 50 and d.tasks == ["sequential"] and "candidates_val.txt" not in d.manifest["files"]
    why = d.task_support["direct"]
    assert "50 items" in why and "100 candidates" in why
    assert dataset_task_support("small", tmp_path / "root")["direct"] == why  # from the manifest alone
    assert len(d.rank_queries("sequential", "test")) == d.n_users
    with pytest.raises(MissingDataError, match="no direct task: 50 items"):
        d.rank_queries("direct", "test")


def test_a_user_who_saw_nearly_every_item_disables_direct_with_the_line(tmp_path):
    seqs = [[0, 1, 2, 3]] * 3 + [list(range(110))]  # the last user leaves 10 unseen items of 120
    write_dataset(tmp_path, "d", users=[User(f"u{k}") for k in range(4)], items=[Item(f"i{k}") for k in range(120)],
                  sequences=seqs)
    d = load_dataset("d", tmp_path)
    assert d.tasks == ["sequential"] and "line 4 of sequences.txt: 110 items" in d.task_support["direct"]


@pytest.mark.parametrize("model, optimizer", [("bpr_mlp", "adam"), ("vbpr", "adam"), ("bpr_mlp", "sparse_adam"),
                                              ("vbpr", "sparse_adam")])
def test_bpr_samplers_train_when_a_user_has_seen_every_item(tmp_path, model, optimizer):
    from bench.registry import get_model

    n_items = 8
    seqs = [list(range(n_items)) + [0, 1], [1, 2, 3, 4], [5, 6, 7]]  # user 0's training items: all of them
    feats = np.random.default_rng(0).normal(size=(n_items, 4)).astype(np.float32)
    write_dataset(tmp_path, "d", users=[User(f"u{k}") for k in range(3)], items=[Item(f"i{k}") for k in range(n_items)],
                  sequences=seqs,
                  features={"f": feats})
    d = load_dataset("d", tmp_path)
    assert len(set(d.train_sequences()[0].tolist())) == n_items
    spec = get_model(model)
    m = spec.cls(spec.config(epochs=2, batch_size=4, embedding_optimizer=optimizer), d, task="direct", seed=0)
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    log = FitLog(None, "ndcg@10", verbose=False)
    m.fit(log)
    assert len(log.history) == 2 and np.isfinite(log.history[-1]["loss"])
    assert any(not v.equal(m.net.state_dict()[k]) for k, v in before.items() if "user" in k)  # embeddings trained


@pytest.mark.parametrize("text, line, fix", [
    ("u1 a b c\nu2 d e f\nu1 g h i\n", 3, "merge them"),
    ("u1 a b c\nu2\n", 2, "remove the line"),
    ("u1 a\nu2 b\n", None, "at least 3 items"),
])
def test_rejected_plain_files_name_the_file_the_line_and_the_fix(tmp_path, text, line, fix):
    path = tmp_path / "seqs.txt"
    path.write_text(text)
    with pytest.raises(DataFormatError) as e:
        import_path(path, tmp_path / "root", "x")
    msg = str(e.value)
    assert msg.startswith(f"{path}:{line}:" if line else f"{path}:") and fix in msg and "\n" not in msg
    assert not (tmp_path / "root" / "x").exists()


def test_rejected_p5_sequences_name_the_file_the_line_and_the_fix(tmp_path):
    src = tmp_path / "rel"
    src.mkdir()
    (src / "sequential_data.txt").write_text("1 1 2 3\n2 B00X 5 6\n")
    with pytest.raises(DataFormatError) as e:
        import_path(src, tmp_path / "root", "x")
    assert str(e.value).startswith(f"{src / 'sequential_data.txt'}:2:") and "plain sequence file" in str(e.value)
