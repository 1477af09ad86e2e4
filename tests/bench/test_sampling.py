"""Shared BPR negative sampling."""

from __future__ import annotations


def test_negative_sampling_ends_for_users_who_have_seen_every_item():
    import numpy as np

    from bench.data.sampling import sample_negatives

    n_items = 5
    users = np.array([0, 0, 1, 1, 2])
    seen = np.unique(np.concatenate([0 * n_items + np.arange(5), 1 * n_items + np.arange(4), [2 * n_items + 1]]))
    neg = sample_negatives(users, seen, n_items, np.random.default_rng(0))
    assert neg[2] == neg[3] == 4  # user 1's only unseen item
    assert neg[4] != 1 and all(0 <= n < n_items for n in neg)  # user 0 has seen all: any item


def test_epoch_tensors_are_the_triples_in_training_order():
    import numpy as np

    from bench.data.sampling import epoch_tensors

    users, items, negs = np.array([0, 1, 2]), np.array([5, 6, 7]), np.array([8, 9, 4])
    u, ij = epoch_tensors(users, items, negs, np.array([2, 0, 1]), "cpu")
    assert u.tolist() == [2, 0, 1] and ij.tolist() == [[7, 4], [5, 8], [6, 9]]


def test_sparse_adam_steps_only_the_rows_a_batch_uses_and_dense_adam_every_row():
    import pytest
    import torch

    from bench.data.sampling import embedding_optimizer

    for name, sparse, moved in (("sparse_adam", True, {1}), ("adam", False, {0, 1, 2})):
        torch.manual_seed(0)
        emb = torch.nn.Embedding(3, 2, sparse=sparse)
        opt = embedding_optimizer(name, [emb.weight], lr=0.1)
        for _ in range(2):  # a first step touches every row (rows 0, 2), then only row 1
            before = emb.weight.detach().clone()
            opt.zero_grad()
            emb(torch.tensor([1] if _ else [0, 1, 2])).sum().backward()
            opt.step()
        assert {r for r in range(3) if not torch.equal(before[r], emb.weight[r])} == moved
    with pytest.raises(ValueError, match="sparse_adam or adam"):
        embedding_optimizer("sgd", [emb.weight], lr=0.1)


def test_fit_bpr_takes_every_training_pair_once_per_epoch_with_an_unseen_negative(tiny):
    import numpy as np
    import torch

    from bench.data.sampling import fit_bpr, training_pairs
    from bench.train import FitLog

    class Fake:  # what fit_bpr reads from a model, and save/load for FitLog's best epoch
        data, device, registered_name = tiny, "cpu", "fake"
        net, rng = torch.nn.Linear(1, 1), np.random.default_rng(0)

        def save(self, path): ...

        def load(self, path): ...

    w = torch.nn.Parameter(torch.zeros(1))
    batches = []

    def batch_loss(u, ij):
        batches.append((u, ij))
        return w.sum()

    log = FitLog(lambda: {"ndcg@10": 0.0}, "ndcg@10", verbose=False)
    fit_bpr(Fake(), log, [torch.optim.SGD([w], lr=0.1)], batch_loss, batch_size=64, epochs=2, patience=5)
    users, items = training_pairs(tiny)
    per_epoch = -(-len(users) // 64)
    assert len(batches) == 2 * per_epoch and log.steps == 2 * per_epoch
    seen = set(zip(users.tolist(), items.tolist(), strict=True))
    for epoch in (batches[:per_epoch], batches[per_epoch:]):
        u = torch.cat([b[0] for b in epoch]).tolist()
        ij = torch.cat([b[1] for b in epoch]).tolist()
        pairs = sorted(zip(u, (p for p, _ in ij), strict=True))
        assert pairs == sorted(zip(users.tolist(), items.tolist(), strict=True))
        assert not any((x, n) in seen for x, (_, n) in zip(u, ij, strict=True))
