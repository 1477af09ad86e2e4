"""`bench diagnose`: a model's candidate ranking against popularity's, on the test lists and on
the user's own training items."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cli import main
from bench.data.synthetic import hidden_world
from bench.studies.diagnose import agreement, candidate_lists, pop_order, positions, summary
from bench.studies.taste_probe import chance, probe_accuracy, truth


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
    assert main(["diagnose", "--dataset", "tiny", "--models", "pop,bpr_mf", "--set", "threads=1",
                 "--data-root", str(tiny_root), "--out", str(page), "--users", "30"]) == 0
    out = capsys.readouterr().out
    assert page.read_text() in out and ", 30 of " in out
    first = out.split("Hidden-taste probe")[0]  # the ranking table (the probe's follows)
    rows = [ln for ln in first.splitlines() if ln.startswith("| pop ") or ln.startswith("| bpr_mf ")]
    assert len(rows) == 2 and "| 1.000 " in rows[0], "pop agrees with itself, in one row however named"
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    assert all(0.0 <= float(c) <= 1.0 for c in cells[1:3] + cells[4:])


def test_each_evaluation_prompt_gets_its_own_row(tiny_root, monkeypatch):
    """A prompted model is scored with every evaluation prompt (B-5 names the user, B-8 gives the id)."""
    from bench.data import load_dataset
    from bench.studies import diagnose as diag

    seen = []

    class ByPop:  # orders every list by training popularity, whatever the prompt
        def rank(self, queries, k, variant=None):
            seen.append(variant)
            return diag.pop_order(np.array([q.candidates for q in queries]), pop)

    data = load_dataset("tiny", tiny_root)
    pop = np.bincount(np.concatenate(data.train_sequences()), minlength=data.n_items).astype(float)
    monkeypatch.setattr(diag, "trained", lambda *a, **k: (ByPop(), ["B-5", "B-8"]))
    page = diag.run_diagnose(task="direct", dataset="tiny", models=["p5"], seed=1, sets={}, device="cpu",
                             data_root=str(tiny_root), users=20)
    rows = {ln.split("|")[1].strip(): ln for ln in page.split("Hidden-taste")[0].splitlines() if ln.startswith("| ")}
    assert set(seen) == {"B-5", "B-8"} and {"p5 (B-5)", "p5 (B-8)"} <= set(rows)
    assert "| 1.000 " in rows["p5 (B-5)"] and "| 1.000 " in rows["p5 (B-8)"], "popularity's own order"


def test_cli_refuses_a_task_without_candidates(tiny_root, capsys):
    assert main(["diagnose", "--task", "sequential", "--dataset", "tiny", "--models", "sasrec",
                 "--data-root", str(tiny_root)]) == 2
    err = capsys.readouterr().err
    assert "needs a task with candidate lists" in err and "Traceback" not in err


def test_probe_accuracy_reads_a_planted_label_and_not_noise():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 4
    planted = np.eye(4)[y] + 0.1 * rng.normal(size=(200, 4))  # the label in plain sight
    assert probe_accuracy(planted, y) == 1.0
    noise = rng.normal(size=(200, 16))
    assert probe_accuracy(noise, y) < 0.45, "chance is 0.25: noise must not read as a label"
    assert chance(np.array([0, 0, 0, 1])) == 0.75


def test_hidden_world_comes_back_from_the_manifest_only_for_generated_data(tiny):
    from bench.data.synthetic_world import build_world

    world = hidden_world(tiny.manifest)
    again = build_world(tiny.n_users, tiny.n_items, tiny.manifest["seed"])
    assert np.array_equal(world.user_style, again.user_style) and np.array_equal(world.item_style, again.item_style)
    assert hidden_world({"provenance": {"generator": "bench.data.importers"}, "seed": 1}) is None
    labels = truth(world, tiny)
    assert len(labels["user_style"]) == tiny.n_users and len(labels["item_style"]) == tiny.n_items
    # models see items renumbered (random indexing): the labels follow them to their model-facing ids
    perm = tiny.perm if tiny.perm is not None else np.arange(tiny.n_items)
    assert np.array_equal(labels["item_style"][perm], world.item_style)
    assert np.array_equal(labels["item_genre"][perm], world.item_genre)


def test_cli_probes_the_learned_vectors_on_generated_data(tiny_root, capsys):
    assert main(["diagnose", "--dataset", "tiny", "--models", "pop,bpr_mf", "--set", "threads=1",
                 "--data-root", str(tiny_root)]) == 0
    out = capsys.readouterr().out
    assert "Hidden-taste probe" in out
    rows = {ln.split("|")[1].strip(): [float(c) for c in ln.strip("|").split("|")[1:]]
            for ln in out.split("Hidden-taste probe")[1].splitlines() if ln.startswith("| ") and "---" not in ln
            and not ln.startswith("| id vectors")}
    assert list(rows) == ["co-occurrence (SVD of the training interactions)", "bpr_mf",
                          "chance (the most common class)"]
    assert all(0.0 <= v <= 1.0 for r in rows.values() for v in r)
