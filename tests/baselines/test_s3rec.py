"""S3-Rec: pre-training inputs, pre-training reduces its loss, attributes are required."""

import dataclasses

import numpy as np
import pytest

from baselines.s3rec import S3Rec, S3RecConfig, attribute_matrix, pretrain_batch
from bench.data import Item, User, load_dataset, write_dataset
from bench.errors import MissingDataError
from bench.train import FitLog


def test_pretrain_batch_masks_and_segments():
    n_items = 50
    mask = n_items + 1
    seqs = [np.array([3, 7, 9, 11, 20, 21]), np.array([4]), np.array([5, 6, 8])]
    long_seq = np.concatenate(seqs)
    b = pretrain_batch(seqs, long_seq, n_items, mask_ratio=0.5, max_len=50, rng=np.random.default_rng(0))
    tokens = b["tokens"]
    assert tokens.shape == (3, 6)
    assert tokens[1].tolist() == [0, 0, 0, 0, 0, 5]  # left padding, item id + 1
    real = tokens > 0
    assert (b["masked"][:, -1] == mask).all(), "the last item is always masked"
    assert ((b["masked"] == tokens) | (b["masked"] == mask)).all()
    assert (b["masked"][~real] == 0).all()
    for row in range(3):  # negatives never come from the same sequence
        assert not set(b["neg_items"][row][real[row]].tolist()) & set(tokens[row][real[row]].tolist())
    # the segment is masked in the context and shown alone (rest [mask]) in the positive segment
    in_seg = b["seg_masked"] == mask
    assert (in_seg.sum(1) >= 1).all() and (in_seg.sum(1) <= np.maximum(real.sum(1) // 2, 1)).all()
    assert (b["pos_seg"][in_seg] == tokens[in_seg]).all()
    assert (b["pos_seg"][real & ~in_seg] == mask).all() and (b["neg_seg"][real & ~in_seg] == mask).all()
    assert (b["pos_seg"][~real] == 0).all() and (b["neg_seg"][~real] == 0).all()
    assert set(b["neg_seg"][in_seg].tolist()) <= set((long_seq + 1).tolist())


def test_attribute_matrix(tiny):
    vocab, m = attribute_matrix(tiny)
    assert m.shape == (tiny.n_items, len(vocab)) and vocab == sorted(vocab)
    it = tiny.items[7]
    assert sorted(vocab[j] for j in np.flatnonzero(m[7])) == sorted(it.attributes)


def test_pretraining_reduces_its_loss(tiny):
    # a small network and small batches: enough optimiser steps in a few seconds
    cfg = S3RecConfig(hidden=16, layers=1, heads=1, pretrain_epochs=3, pretrain_batch_size=32)
    model = S3Rec(cfg, tiny, task="sequential", seed=0)
    model.pretrain(FitLog(None, "ndcg@10", "s3rec", verbose=False))
    first, last = model.pretrain_history[0], model.pretrain_history[-1]
    assert len(model.pretrain_history) == 3
    assert last["total"] < 0.8 * first["total"]
    assert last["map"] < first["map"] and last["aap"] < first["aap"]


def test_needs_attributes_before_training(tmp_path):
    rng = np.random.default_rng(0)
    n_users, n_items = 20, 120
    write_dataset(
        tmp_path, "bare", users=[User(f"u{u}") for u in range(n_users)],
        items=[Item(f"i{i}", f"title {i}") for i in range(n_items)],  # no attributes
        sequences=[rng.choice(n_items, size=5, replace=False).tolist() for _ in range(n_users)],
    )
    data = load_dataset("bare", tmp_path)
    with pytest.raises(MissingDataError, match="attributes"):
        S3Rec(S3RecConfig(), data, task="sequential")


def test_a_time_limit_gives_the_pretraining_half_and_the_fine_tuning_the_rest(tiny, monkeypatch):
    """Under --time-limit the pre-training stops at its share of the job's time (it used to run to
    the end, past the limit, leaving no time to fine-tune); the fine-tuning then trains and the
    record says what the pre-training did."""
    from bench import progress

    cfg = S3RecConfig(hidden=16, layers=1, heads=1, pretrain_epochs=50, pretrain_batch_size=32, epochs=2)
    model = S3Rec(cfg, tiny, task="sequential", seed=0)
    clock = {"t": 1000.0}
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock["t"])
    progress.set_time_limit(100.0)  # deadline at t=1100; the pre-training's own at t=1050
    real_epoch = model._pretrain_epoch

    def epoch_takes_20s(*args):  # each pre-training pass "takes" 20 s of the job's clock
        clock["t"] += 20.0
        return real_epoch(*args)

    monkeypatch.setattr(model, "_pretrain_epoch", epoch_takes_20s)
    try:
        log = FitLog(lambda: {"ndcg@10": 0.0}, "ndcg@10", "s3rec", verbose=False)
        model.fit(log)
        capped = progress.job_time_capped()
    finally:
        progress.set_time_limit(None)
    extras = model.record_extras("sequential")["pretraining"]
    # passes start at t=1020 and t=1040 (complete), the third at t=1060 is past the share: cut at once
    assert extras == {"epochs_run": 2, "of": 50, "cut_by_time_limit": True, "taken_over_from_checkpoint": False}
    assert capped, "the record's time_capped flag"
    assert log.steps > 0 and len(log.history) == 2, "the fine-tuning kept the rest of the time"


def test_a_resumed_run_does_not_pretrain_again(tiny, tmp_path):
    cfg = S3RecConfig(hidden=16, layers=1, heads=1, pretrain_epochs=2, pretrain_batch_size=32, epochs=1)
    first = S3Rec(cfg, tiny, task="sequential", seed=0)
    first.fit(FitLog(lambda: {"ndcg@10": 0.0}, "ndcg@10", "s3rec", checkpoint_dir=tmp_path, verbose=False))
    again = S3Rec(dataclasses.replace(cfg, epochs=2), tiny, task="sequential", seed=0)
    log = FitLog(lambda: {"ndcg@10": 0.0}, "ndcg@10", "s3rec", checkpoint_dir=tmp_path, verbose=False)
    again.fit(log)
    assert again.pretrain_history == []
    assert again.record_extras("sequential")["pretraining"]["taken_over_from_checkpoint"]
    assert log.resumed_from_epoch == 1 and len(log.history) == 2
