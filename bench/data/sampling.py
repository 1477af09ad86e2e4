"""Negative sampling, batching and the training loop shared by the BPR-trained baselines (BPR-MLP, VBPR)."""

from __future__ import annotations

import numpy as np

from bench.data import BenchData


def training_pairs(data: BenchData) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of the training interactions, one row each (duplicates kept)."""
    seqs = data.train_sequences()
    users = np.concatenate([np.full(len(s), u, dtype=np.int64) for u, s in enumerate(seqs)])
    return users, np.concatenate(seqs).astype(np.int64)


def sample_negatives(users: np.ndarray, seen: np.ndarray, n_items: int, rng: np.random.Generator,
                     rounds: int = 100) -> np.ndarray:
    """One item per user that the user never interacted with in training. `seen` holds the
    sorted keys user * n_items + item of the training interactions; collisions are redrawn a
    bounded number of times, then the few users left (nearly every item seen) draw from their
    exact complement — or, having seen every item, get any item (no unseen one exists)."""
    neg = rng.integers(0, n_items, len(users))
    bad = np.flatnonzero(np.isin(users * n_items + neg, seen))
    for _ in range(rounds):
        if not len(bad):
            return neg
        neg[bad] = rng.integers(0, n_items, len(bad))
        bad = bad[np.isin(users[bad] * n_items + neg[bad], seen)]
    for b in bad:
        u = int(users[b])
        lo, hi = np.searchsorted(seen, [u * n_items, (u + 1) * n_items])
        unseen = np.setdiff1d(np.arange(n_items), seen[lo:hi] - u * n_items)
        neg[b] = rng.choice(unseen) if len(unseen) else rng.integers(n_items)
    return neg


def epoch_tensors(users: np.ndarray, items: np.ndarray, negs: np.ndarray, order: np.ndarray, device: str):
    """One epoch's BPR triples in training order, built once: users [N] and (positive, negative)
    items [N, 2] as tensors on `device`, so that a batch is a slice (no per-batch copies)."""
    import torch

    u = torch.from_numpy(np.ascontiguousarray(users[order])).to(device)  # [N]
    ij = torch.from_numpy(np.stack([items[order], negs[order]], 1)).to(device)  # [N, 2]
    return u, ij


def fit_bpr(model, log, opts: list, batch_loss, *, batch_size: int, epochs: int, patience: int) -> None:
    """The BPR training loop of BPR-MLP and VBPR, which differ only in `batch_loss(u, ij)`: a batch's
    mean loss from users [B] and (positive, negative) items [B, 2]; every optimizer in `opts` steps
    on it. Each epoch takes every training interaction once, in a new order, with a new negative
    (sample_negatives). `model` has data, net, device and rng: the model's own generator, drawn
    here (order, then negatives) so that a checkpoint of it resumes the same draws."""
    from bench.progress import progress

    n_items = model.data.n_items
    users, items = training_pairs(model.data)
    seen = np.unique(users * n_items + items)  # sorted keys for the negative sampler
    for _epoch in log.epochs(model, max_epochs=epochs, patience=patience):
        model.net.train()  # validation left it in eval mode (dropout off)
        order = model.rng.permutation(len(users))
        negs = sample_negatives(users, seen, n_items, model.rng)
        u_all, ij_all = epoch_tensors(users, items, negs, order, model.device)  # [N], [N, 2] (pos, neg)
        total = 0.0
        for start in progress(range(0, len(order), batch_size), desc=f"{model.registered_name} batches"):
            u, ij = u_all[start : start + batch_size], ij_all[start : start + batch_size]  # [B], [B, 2]
            loss = batch_loss(u, ij)
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in opts:
                opt.step()
            total += loss.detach() * len(u)  # summed on the device: no synchronisation per batch
        log.add_steps(-(-len(order) // batch_size))
        log.loss(float(total) / len(order))


def embedding_optimizer(name: str, params: list, lr: float):
    """The optimizer of BPR embedding tables. ``sparse_adam``: lazy Adam on sparse gradients, only
    the rows a batch uses are stepped, so a step costs the batch, not the catalogue (the tables
    must be ``nn.Embedding(..., sparse=True)``); ``adam``: dense Adam, every row every step."""
    import torch

    if name == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, fused=True)
    raise ValueError(f"embedding_optimizer {name!r}: expected sparse_adam or adam")
