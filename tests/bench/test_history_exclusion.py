"""Rankings against all items leave the user's history out when no user repeats an item
(RankQuery.exclude): the dataset decides, the shared helpers and the evaluator apply it to every model."""

from __future__ import annotations

import numpy as np

from bench.data import load_dataset
from bench.evaluate import evaluate_ranker
from bench.model import rank_by_scores


def test_a_dataset_without_repeats_excludes_each_users_history_from_sequential_queries(tiny):
    assert tiny.history_excluded
    for split, cut in (("val", -2), ("test", -1)):
        for q, s in zip(tiny.rank_queries("sequential", split), tiny.sequences, strict=True):
            assert np.array_equal(q.exclude, s[:cut]) and np.array_equal(q.history, s[:cut])
    assert all(q.exclude is None for q in tiny.rank_queries("direct", "test"))  # candidates are never seen items


def test_one_repeated_training_item_keeps_every_history_in_the_ranking(tiny_root):
    data = load_dataset("tiny", tiny_root)
    s = data.sequences[0]
    data.sequences[0] = np.concatenate([s[:1], s[:1], s[1:]])  # user 0 buys their first item twice
    assert not data.history_excluded
    assert all(q.exclude is None for q in data.rank_queries("sequential", "test"))


class _Query:
    def __init__(self, history, exclude=None):
        self.history, self.exclude, self.candidates = np.array(history), exclude, None


def test_rank_by_scores_never_lists_an_excluded_item():
    scores = np.array([[9.0, 8.0, 7.0, 1.0, 0.0]])  # the two best are excluded
    queries = [_Query([0, 1], exclude=np.array([0, 1]))]
    assert rank_by_scores(queries, 3, lambda batch, cands: scores) == [[2, 3, 4]]
    assert rank_by_scores([_Query([0, 1])], 3, lambda batch, cands: scores) == [[0, 1, 2]]  # no exclusion
    assert scores[0, 0] == 9.0  # the scorer's array is not written to


class _Lister:
    """Returns a fixed list per query, whatever the protocol asks."""

    def __init__(self, lists):
        self.lists = lists

    def rank(self, queries, k):
        return [self.lists[q.user] for q in queries]


def test_the_evaluator_drops_a_listed_history_item_and_counts_it_invalid(tiny):
    queries = tiny.rank_queries("sequential", "test")
    targets = tiny.rank_targets("test")
    # user u lists a history item first, then the target: the target moves up to rank 1
    lists = [[int(q.history[-1]), int(t)] for q, t in zip(queries, targets, strict=True)]
    ev = evaluate_ranker(_Lister(lists), tiny, "sequential", "test")
    assert ev.metrics["hr@1"] == 1.0
    assert ev.metrics["invalid_rate"] == 0.5
