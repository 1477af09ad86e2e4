"""Timing reports (pytest-benchmark). Skipped by the default run (``--benchmark-skip`` in the
pytest addopts marks them at collection, before any fixture is built); run them with

    pytest tests/perf --benchmark-only --benchmark-json results/perf/cpu.json

and compare two reports with ``pytest-benchmark compare a.json b.json``. Everything runs on the
embedded `synthetic` dataset (generated into a temporary directory) on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.data import RankQuery

COLLATE_BATCH = 64  # prompts per collation call
STEP_BATCH = 32  # VIP5's default batch size
BEAM_USERS = 16  # VIP5's default eval_batch_size: users per beam search call
N_LISTS = 10_000  # ranked lists for the evaluator


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The embedded dataset (600 users, 600 items: the generator's defaults)."""
    from bench.data import load_dataset
    from bench.data.synthetic import generate

    root = tmp_path_factory.mktemp("data")
    generate(root, name="synthetic")
    return load_dataset("synthetic", root)


def _vip5(data, task="sequential", **over):
    from bench.config import build_config
    from models.vip5 import VIP5, VIP5Config

    torch.manual_seed(0)
    return VIP5(build_config(VIP5Config, {"backbone_init": "random"} | over), data, task=task, device="cpu", seed=0)


def test_prompt_collation(benchmark, synthetic):
    """Prompts -> padded token, whole-word and label tensors plus image features (sequential and direct mix)."""
    m = _vip5(synthetic)
    samples = m._samples(np.random.default_rng(0), m.render, ["sequential", "direct"])
    batch = [samples[i] for i in np.random.default_rng(1).choice(len(samples), COLLATE_BATCH, replace=False)]
    benchmark.extra_info["prompts_per_call"] = COLLATE_BATCH
    benchmark(lambda: (m._encode_inputs(batch), m._encode_targets(batch)))


@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("mode", ["adapters", "full"])
def test_training_step(benchmark, synthetic, size, mode):
    """One optimizer step (forward, backward, clipping, AdamW) of the loop in GenerativeRecommender.fit,
    on the same batch of sequential prompts: VIP5's adapters on a frozen backbone vs full fine-tuning
    of the same network shape (`small` is t5-small's)."""
    m = _vip5(synthetic, backbone_size=size, train_mode=mode)
    samples = m._samples(np.random.default_rng(0), m.render, ["sequential"])[:STEP_BATCH]
    ids, words, mask, feats = m._encode_inputs(samples)
    labels = m._encode_targets(samples)
    params = [p for p in m.net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    m.net.train()

    def step():
        loss = m.net(ids, words, mask, feats, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, m.cfg.clip)
        opt.step()

    trainable, total = m.num_params()
    benchmark.extra_info |= {"trainable_params": trainable, "total_params": total, "batch": STEP_BATCH,
                             "tokens": int(mask.sum())}
    benchmark.pedantic(step, rounds=20 if size == "tiny" else 5, warmup_rounds=1)


@pytest.mark.parametrize("task", ["sequential", "direct"])
def test_constrained_beam_search(benchmark, synthetic, task):
    """20-beam search constrained to valid item ids (all items, or each user's 100 candidates), 16 users a call."""
    m = _vip5(synthetic, task=task)
    queries = synthetic.rank_queries(task, "test")[:BEAM_USERS]
    benchmark.extra_info |= {"users_per_call": BEAM_USERS, "beams": m.cfg.beams}
    benchmark.pedantic(lambda: m.rank(queries, 10), rounds=3, warmup_rounds=1)


def test_sasrec_epoch(benchmark, synthetic):
    """One SASRec training epoch (every user's sequence once) on the embedded dataset."""
    from baselines.sasrec import SASRec, SASRecConfig
    from bench.train import FitLog

    torch.manual_seed(0)
    model = SASRec(SASRecConfig(epochs=1), synthetic, task="sequential", device="cpu", seed=0)
    benchmark.extra_info["users"] = synthetic.n_users
    benchmark.pedantic(lambda: model.fit(FitLog(None, "ndcg@10", verbose=False)), rounds=5, warmup_rounds=1)


class _Lists:
    """N_LISTS users whose ranked lists are given: the evaluator's input without a model."""

    def __init__(self, task: str, rng):
        self.n_users, self.n_items = N_LISTS, 5000
        self.cands = rng.integers(0, self.n_items, (N_LISTS, 100)) if task == "direct" else None  # [N, 100]
        pool = self.cands if self.cands is not None else rng.integers(0, self.n_items, (N_LISTS, 100))
        self.targets = pool[:, 0].copy()  # [N]
        self.lists = [rng.permutation(row)[:10].tolist() for row in pool]  # N lists of 10 ids

    def rank_queries(self, task, split):
        hist = np.zeros(0, dtype=np.int64)
        return [RankQuery(u, hist, None if self.cands is None else self.cands[u]) for u in range(N_LISTS)]

    def rank_targets(self, split):
        return self.targets

    def rank(self, queries, k):
        return self.lists


@pytest.mark.parametrize("task", ["sequential", "direct"])
def test_evaluator_10k_lists(benchmark, task):
    """bench.evaluate on 10,000 top-10 lists: validity check (all items, or the 100 candidates), ranks, metrics."""
    from bench.evaluate import evaluate_ranker

    lists = _Lists(task, np.random.default_rng(0))
    benchmark.extra_info["lists"] = N_LISTS
    result = benchmark(lambda: evaluate_ranker(lists, lists, task, "test"))
    assert 0 < result.metrics["hr@10"] <= 1
