"""Splits shared by every model: leave-one-out, direct-task candidates, explanation split, item indexing.

Follows P5 (see REFERENCE.md "Splits and samples"), with two fixes: candidate lists are
sampled once per dataset and stored (the official code re-draws them on every run), and
negatives are de-duplicated correctly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_NEGATIVES = 99
INDEXINGS = ("random", "sequential")  # not a task: item indexings


def sample_candidates(sequences: Sequence[Sequence[int]], n_items: int,
                      seed: int) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """Direct-task candidate lists: {"val": [n_users, 100] (target seq[-2]), "test": (seq[-1])}, and
    None; or None and one line saying why the catalogue cannot have them.

    Each list holds the target and 99 distinct items the user never interacted with, shuffled.
    """
    rng = np.random.default_rng([seed, 100])
    n_users = len(sequences)
    if n_items < N_NEGATIVES + 1:
        return None, (f"{n_items} items: the direct task ranks 100 candidates (the target and {N_NEGATIVES} items "
                      f"the user never interacted with), so it needs more than {N_NEGATIVES} items")
    seen_counts = [len(set(int(i) for i in seq)) for seq in sequences]
    short = [u for u, n in enumerate(seen_counts) if n_items - n < N_NEGATIVES]
    if short:
        u = short[0]
        return None, (f"{len(short)} user(s) interacted with so many of the {n_items} items that fewer than "
                      f"{N_NEGATIVES} never-interacted items are left for a candidate list (e.g. the user on line "
                      f"{u + 1} of sequences.txt: {seen_counts[u]} items)")
    out = {
        "val": np.empty((n_users, N_NEGATIVES + 1), np.int64),
        "test": np.empty((n_users, N_NEGATIVES + 1), np.int64),
    }
    for u, seq in enumerate(sequences):
        seen = set(int(i) for i in seq)
        for split, target in (("val", seq[-2]), ("test", seq[-1])):
            negs: list[int] = []
            chosen: set[int] = set()
            while len(negs) < N_NEGATIVES:
                for i in rng.integers(0, n_items, size=2 * (N_NEGATIVES - len(negs)) + 8).tolist():
                    if i not in seen and i not in chosen:
                        chosen.add(i)
                        negs.append(i)
                        if len(negs) == N_NEGATIVES:
                            break
            row = np.array([target, *negs], dtype=np.int64)
            rng.shuffle(row)
            out[split][u] = row
    return out, None


def split_reviews(reviews: list, seed: int) -> list:
    """8:1:1 random split for records without one; one record per user and per item forced into train
    (as P5's exp_splits), so that every test user and item has been seen in training."""
    if all(r.split for r in reviews):
        return reviews
    rng = np.random.default_rng([seed, 811])
    order = rng.permutation(len(reviews))
    forced: set[int] = set()
    seen_u: set[int] = set()
    seen_i: set[int] = set()
    for k in order.tolist():
        r = reviews[k]
        if r.user not in seen_u or r.item not in seen_i:
            forced.add(k)
            seen_u.add(r.user)
            seen_i.add(r.item)
    rest = [k for k in order.tolist() if k not in forced]
    n_eval = len(reviews) // 10
    split_of = {k: "val" for k in rest[:n_eval]} | {k: "test" for k in rest[n_eval : 2 * n_eval]}
    for k, r in enumerate(reviews):
        if not r.split:
            r.split = split_of.get(k, "train")
    return reviews


def item_permutation(indexing: str, sequences: Sequence[np.ndarray], n_items: int, seed: int) -> np.ndarray:
    """perm[stored_id] = id the models see.

    ``sequential``: P5's numbering, by first appearance while walking the users' whole
    sequences (test items included: consecutive ids often follow each other, which leaks
    the target to a generative model). ``random``: a fixed seeded permutation (leak-free).
    """
    if indexing == "random":
        return np.random.default_rng([seed, 7]).permutation(n_items)
    if indexing == "sequential":  # not a task: P5's indexing
        perm = np.full(n_items, -1, dtype=np.int64)
        nxt = 0
        for seq in sequences:
            for i in seq:
                if perm[i] < 0:
                    perm[i] = nxt
                    nxt += 1
        missing = np.flatnonzero(perm < 0)
        perm[missing] = np.arange(nxt, nxt + len(missing))
        return perm
    raise ValueError(f"unknown indexing {indexing!r}; known: {', '.join(INDEXINGS)}")
