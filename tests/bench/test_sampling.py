"""Shared BPR negative sampling."""

from __future__ import annotations


def test_negative_sampling_ends_for_users_who_have_seen_every_item():
    import numpy as np

    from bench.sampling import sample_negatives

    n_items = 5
    users = np.array([0, 0, 1, 1, 2])
    seen = np.unique(np.concatenate([0 * n_items + np.arange(5), 1 * n_items + np.arange(4), [2 * n_items + 1]]))
    neg = sample_negatives(users, seen, n_items, np.random.default_rng(0))
    assert neg[2] == neg[3] == 4  # user 1's only unseen item
    assert neg[4] != 1 and all(0 <= n < n_items for n in neg)  # user 0 has seen all: any item
