"""`bench diagnose`: a model's candidate ranking against popularity's, on the test lists and on
the user's own training items."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cli import main
from bench.studies.diagnose import agreement, candidate_lists, pop_order, positions, summary


def test_positions_and_summary_by_hand():
    order = [[3, 1, 2], [2, 3, 1], [1, 2]]  # the last list leaves its target (3) out: counted last
    pos = positions(order, np.array([1, 2, 3]), n=3)
    assert pos.tolist() == [1, 0, 2]
    s = summary(pos, 3)
    assert s["hr@10"] == 1.0
    assert s["auc"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)  # 1 - place / (n - 1), averaged


def test_pop_order_and_agreement_by_hand():
    pop = np.array([5.0, 1.0, 5.0, 9.0])
    lists = np.array([[0, 1, 2, 3]])
    assert pop_order(lists, pop) == [[3, 0, 2, 1]], "most popular first, ties in the list's order"
    assert agreement([[3, 0, 2, 1]], [[3, 0, 2, 1]]) == pytest.approx(1.0)
    assert agreement([[1, 2, 0, 3]], [[3, 0, 2, 1]]) == pytest.approx(-1.0)


def test_candidate_lists_swap_the_target_for_a_training_item_in_place(tiny):
    assert len(candidate_lists(tiny, "direct", np.random.default_rng(0), np.array([0, 3]))["own"][1]) == 2
    lists = candidate_lists(tiny, "direct", np.random.default_rng(0))
    test, targets = lists["test"]
    own, own_targets = lists["own"]
    train = tiny.train_sequences()
    for u in range(tiny.n_users):
        assert targets[u] in test[u] and own_targets[u] in train[u]
        j = int(np.flatnonzero(test[u] == targets[u])[0])
        assert own[u][j] == own_targets[u], "the same place in the same list"
        assert np.array_equal(np.delete(own[u], j), np.delete(test[u], j)), "the same negatives"


def test_cli_prints_pop_and_each_model(tiny_root, tmp_path, capsys):
    page = tmp_path / "diagnose.md"
    assert main(["diagnose", "--dataset", "tiny", "--models", "bpr_mf", "--set", "threads=1",
                 "--data-root", str(tiny_root), "--out", str(page), "--users", "30"]) == 0
    out = capsys.readouterr().out
    assert page.read_text() in out and ", 30 of " in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| pop ") or ln.startswith("| bpr_mf ")]
    assert len(rows) == 2 and "| 1.000 " in rows[0], "pop agrees with itself"
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    assert all(0.0 <= float(c) <= 1.0 for c in cells[1:3] + cells[4:])


def test_cli_refuses_a_task_without_candidates(tiny_root, capsys):
    assert main(["diagnose", "--task", "sequential", "--dataset", "tiny", "--models", "sasrec",
                 "--data-root", str(tiny_root)]) == 2
    err = capsys.readouterr().err
    assert "needs a task with candidate lists" in err and "Traceback" not in err
