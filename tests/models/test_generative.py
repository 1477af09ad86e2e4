"""VIP5/P5 engine: that they learn at all (guard), exact candidate scoring, multitask training shared
between jobs, VIP5 on its P5 backbone, a local Hugging Face backbone, and the samplers' edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.config import build_config
from bench.data.dataset import RankQuery
from bench.train import FitLog
from models.vip5 import P5, VIP5, P5Config, VIP5Config

FAST = dict(VIP5.CONTRACT_OVERRIDES) | {"epochs": 1}


def _model(cls, cfg_cls, data, task="direct", seed=0, **over):
    return cls(build_config(cfg_cls, FAST | over), data, task=task, device="cpu", seed=seed)


# ------------------------------------------------------------------ guard: they learn


def _memorise(m, users, n_cands=5):
    """Fixed training prompts for `users`: A-3 (history -> last training item) and B-5 (that item
    among n_cands candidates); returns the matching sequential and direct queries."""
    train = m.data.train_sequences()
    rng = np.random.default_rng(0)
    prompts, seq_q, dir_q = [], [], []
    for u in users:
        hist, target = train[u][:-1], int(train[u][-1])
        cands = np.array([target] + m._negatives(u, rng, n_cands - 1, also=target))
        rng.shuffle(cands)
        prompts.append(m.render.render("A-3", user=u, history=hist, target=m.render.item(target)))
        prompts.append(m.render.render("B-5", user=u, candidates=cands.tolist(), target=m.render.item(target)))
        seq_q.append((RankQuery(u, hist, None), target))
        dir_q.append((RankQuery(u, train[u], cands), target))
    m._samples = lambda *a, **k: list(prompts)
    return seq_q, dir_q


GUARD = dict(batch_size=40, lr=3e-3, warmup=0.05, patience=1000, beams=5, dropout=0.0)


def _hr1(m, seq_q, dir_q) -> dict[str, float]:
    out = {}
    for name, queries, pid in (("sequential", seq_q, "A-3"), ("direct", dir_q, "B-5")):
        top = m.rank([q for q, _ in queries], 5, variant=pid)
        out[name] = float(np.mean([r[0] == t for r, (_, t) in zip(top, queries, strict=True)]))
    return out


def test_the_generative_models_learn_their_training_targets(tiny, monkeypatch):
    """If this fails, P5/VIP5 stopped learning (a broken loss, mask, embedding, adapter or decoding):
    20 users' next items, memorised from fixed prompts, must come back first through rank().
    VIP5 is checked as the paper builds it, on top of the P5 that learned them: adapters on a
    frozen *random* T5 cannot learn to generate item ids (they learn a prior over ids only)."""
    import models.shared

    p5 = _model(P5, P5Config, tiny, epochs=60, **GUARD)
    seq_q, dir_q = _memorise(p5, range(20))
    p5.fit(FitLog(None, "ndcg@10", verbose=False))
    assert min(_hr1(p5, seq_q, dir_q).values()) >= 0.9, _hr1(p5, seq_q, dir_q)

    def p5_backbone(vip5):  # VIP5's backbone is this P5 (instead of a P5 trained on the whole dataset)
        vip5.net.load_state_dict(p5.net.state_dict(), strict=False)
        return {"id": "memorised"}

    monkeypatch.setattr(models.shared, "load_p5_backbone", p5_backbone)
    vip5 = _model(VIP5, VIP5Config, tiny, epochs=20, backbone_init="p5", **GUARD)
    assert vip5.k == 2 and vip5.training["backbone"] == {"id": "memorised"}
    seq_q, dir_q = _memorise(vip5, range(20))  # the same prompts, now with image tokens
    vip5.fit(FitLog(None, "ndcg@10", verbose=False))
    assert min(_hr1(vip5, seq_q, dir_q).values()) >= 0.9, _hr1(vip5, seq_q, dir_q)


# ------------------------------------------------------------------ exact candidate scoring


@pytest.mark.parametrize("cls,cfg_cls", [(P5, P5Config), (VIP5, VIP5Config)], ids=["p5", "vip5"])
def test_exact_scoring_is_the_teacher_forced_log_likelihood(tiny, cls, cfg_cls):
    from models.scoring import candidate_log_likelihoods

    m = _model(cls, cfg_cls, tiny)
    torch.manual_seed(0)
    with torch.no_grad():  # move the (zero-initialised) new embeddings and adapters off their start
        for p in m.net.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    m.net.eval()
    q = tiny.rank_queries("direct", "test")[3]
    cands = q.candidates[:12].tolist()
    prompt = m._prompts("B-5", [q])
    ids, words, mask, feats = m._encode_inputs(prompt)
    with torch.no_grad():
        enc = m.net.t5.get_encoder()(
            inputs_embeds=m.net.embed(ids, words, feats), attention_mask=mask
        ).last_hidden_state
        toks = [m.item_tokens[c] for c in cands]
        fast = candidate_log_likelihoods(m.net.t5, enc, mask, [toks], m.tok.pad_id)[0]
        # 5 per decoder row: 3 rows, the last one part padding; two prompts of different sizes
        rows = candidate_log_likelihoods(m.net.t5, enc.expand(2, -1, -1), mask.expand(2, -1), [toks, toks[:7]],
                                         m.tok.pad_id, group=5)
        slow = []
        for c in cands:  # one full forward per candidate: minus the summed token cross-entropy
            labels = torch.tensor([m.item_tokens[c]])
            logits = m.net.t5(inputs_embeds=m.net.embed(ids, words, feats), attention_mask=mask, labels=labels,
                              use_cache=False).logits
            slow.append(-torch.nn.functional.cross_entropy(logits[0], labels[0], reduction="sum").item())
    assert torch.allclose(fast, torch.tensor(slow), atol=1e-4)
    assert torch.allclose(rows[0], fast, atol=1e-5) and torch.allclose(rows[1], fast[:7], atol=1e-5)
    ranked = m.rank([q], 10, variant="B-5")[0]
    assert len(ranked) == 10 and set(ranked) <= set(q.candidates.tolist())


def test_beam_search_stays_available_for_the_direct_task(tiny):
    m = _model(P5, P5Config, tiny, scoring="beam", beams=10)
    q = tiny.rank_queries("direct", "test")[:3]
    assert all(set(r) <= set(x.candidates.tolist()) for r, x in zip(m.rank(q, 10, variant="B-5"), q, strict=True))
    assert "beam search" in m.decoding("direct") and "exact" in _model(P5, P5Config, tiny).decoding("direct")


# ------------------------------------------------------------------ multitask, shared between jobs


def test_one_multitask_training_serves_every_task_and_is_vip5s_backbone(tiny_root, tmp_path):
    import shutil

    from bench.data import load_dataset

    shutil.copytree(tiny_root / "tiny", tmp_path / "tiny")  # its own cache directory
    data = load_dataset("tiny", tmp_path)
    over = dict(train_tasks="all", epochs=1, val_queries=8)
    first = _model(P5, P5Config, data, task="sequential", **over)
    first.fit(FitLog(None, "ndcg@10", verbose=False))
    assert first.training["reused"] is False and first.training["tasks"] == list(data.tasks)
    assert first.training["optimizer_steps"] > 0

    second = _model(P5, P5Config, data, task="direct", **over)
    log = FitLog(None, "ndcg@10", verbose=False)
    second.fit(log)
    assert second.training["id"] == first.training["id"] and second.training["reused"] is True
    assert log.steps == first.training["optimizer_steps"] and "val" in log.history[0]  # the training's own curve
    assert all(torch.equal(a, b) for a, b in zip(first.net.state_dict().values(), second.net.state_dict().values(),
                                                  strict=True))

    vip5 = _model(VIP5, VIP5Config, data, task="explanation", **over, backbone_init="p5", backbone_epochs=1,
                  vocab_size=FAST["vocab_size"])
    assert vip5.training["backbone"]["id"] == first.training["id"] and vip5.training["backbone"]["reused"]

    # a cache that does not load (a truncated file) is moved aside with one warning and trained again
    net_pt = next((tmp_path / "tiny").rglob(f"{first.training['id']}/net.pt"))
    net_pt.write_bytes(net_pt.read_bytes()[:100])
    again = _model(P5, P5Config, data, task="direct", **over)
    said = []
    log = FitLog(None, "ndcg@10", verbose=False)
    log.say = said.append
    again.fit(log)
    assert again.training["reused"] is False and any("does not load" in s and "moved aside" in s for s in said)
    assert list(net_pt.parent.parent.glob(f"{first.training['id']}.unreadable-*")) and net_pt.exists()

    other_seed = _model(P5, P5Config, data, task="direct", seed=1, **over)
    decoding_only = _model(P5, P5Config, data, task="direct", **over, beams=7, scoring="beam")
    from models.shared import training_key

    assert training_key(other_seed) != training_key(first) == training_key(decoding_only)


def test_a_cached_training_is_the_same_whichever_job_trains_it_first(tiny_root, tmp_path):
    # a P5 job, or a VIP5 job that builds and trains its P5 backbone after its own network: one key,
    # so one set of weights (before, the backbone started from where VIP5's initialisation left
    # torch's generator, and which job won the race decided the P5 row; models/shared.py)
    import shutil

    from bench.data import load_dataset
    from bench.train import seed_everything

    nets = []
    for who in ("p5", "vip5"):
        shutil.copytree(tiny_root / "tiny", tmp_path / who / "tiny")  # a cache directory each
        data = load_dataset("tiny", tmp_path / who)
        over = dict(train_tasks="all", epochs=1, val_queries=8)
        seed_everything(0)  # as the worker does before it builds a job's model
        if who == "p5":
            _model(P5, P5Config, data, task="sequential", **over).fit(FitLog(None, "ndcg@10", verbose=False))
        else:
            first_vip5 = _model(VIP5, VIP5Config, data, **over, backbone_init="p5", backbone_epochs=1,
                                vocab_size=FAST["vocab_size"])
        (net,) = (tmp_path / who).rglob("p5-*/net.pt")
        nets.append((net.parent.name, torch.load(net, weights_only=True)))
    (id_a, a), (id_b, b) = nets
    assert id_a == id_b and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and VIP5's own new weights (adapters, mapping) do not depend on whether its backbone was just
    # trained in this process or loaded from the cache
    seed_everything(0)
    again = _model(VIP5, VIP5Config, data, **over, backbone_init="p5", backbone_epochs=1, vocab_size=FAST["vocab_size"])
    assert again.training["backbone"]["reused"] and not first_vip5.training["backbone"]["reused"]
    assert all(torch.equal(x, y) for x, y in zip(first_vip5.net.state_dict().values(),
                                                  again.net.state_dict().values(), strict=True))


def test_the_training_key_follows_the_code_and_the_tokenizer(tiny, monkeypatch):
    import models.shared as shared

    m = _model(P5, P5Config, tiny)
    key = shared.training_key(m)
    monkeypatch.setattr(shared, "code_version", lambda: "changed")
    assert shared.training_key(m) != key
    monkeypatch.undo()
    monkeypatch.setattr(m.tok, "fingerprint", lambda: "another tokenizer")
    assert shared.training_key(m) != key


def test_a_backbone_that_does_not_fit_vip5_is_refused(tiny, monkeypatch):
    from bench.errors import UsageError

    real = P5.fit

    def fit_and_rename(self, log):
        real(self, log)
        w = self.net.whole_word
        self.net.add_module("renamed_word", w)  # a key VIP5 does not have
        del self.net.whole_word

    monkeypatch.setattr(P5, "fit", fit_and_rename)
    with pytest.raises(UsageError, match="does not fit VIP5"):
        _model(VIP5, VIP5Config, tiny, backbone_init="p5", backbone_epochs=1, train_tasks="task")


def test_a_local_hugging_face_t5_directory_is_the_backbone(tiny, tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=400, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    T5ForConditionalGeneration(cfg).save_pretrained(tmp_path / "t5")
    saved = T5ForConditionalGeneration.from_pretrained(tmp_path / "t5").state_dict()
    for cls, cfg_cls in ((P5, P5Config), (VIP5, VIP5Config)):
        m = _model(cls, cfg_cls, tiny, backbone=str(tmp_path / "t5"))
        assert m.net.t5.config.d_model == 32
        w = "encoder.block.0.layer.0.SelfAttention.q.weight"
        assert torch.equal(m.net.t5.state_dict()[w], saved[w])  # the directory's weights, not a fresh init
        m.fit(FitLog(None, "ndcg@10", verbose=False))
        assert len(m.rank(tiny.rank_queries("sequential", "test")[:2], 10, variant="A-3")[0]) >= 1


# ------------------------------------------------------------------ samplers and ranking


def test_negatives_never_use_validation_or_test_items_and_end_for_a_user_who_saw_everything(tiny):
    m = _model(P5, P5Config, tiny)
    rng = np.random.default_rng(0)
    held_out = {int(tiny.sequences[0][-1]), int(tiny.sequences[0][-2])}
    draws = m._negatives(0, rng, 2000)
    assert held_out & set(draws)  # held-out items are not "seen" in training: they may be negatives
    assert not set(draws) & m.seen[0]
    m.seen[0] = set(range(tiny.n_items))  # a user who has seen every item
    assert len(m._negatives(0, rng, 5, also=3)) == 5 and 3 not in m._negatives(0, rng, 50, also=3)


def test_sequential_samples_cover_distinct_positions_first(tiny):
    m = _model(P5, P5Config, tiny)
    picks = m._positions(np.random.default_rng(0), 6, 5)
    assert sorted(picks) == [1, 2, 3, 4, 5]
    assert len(m._positions(np.random.default_rng(0), 3, 5)) == 5


def test_records_state_the_real_vocabulary_and_the_decoding(tiny):
    m = _model(P5, P5Config, tiny)
    extras = m.record_extras("direct")
    tok = extras["tokenizer"]
    # the requested size is the text's share; every user and item id is one more piece
    assert tok["id_tokens"] == tiny.n_users + tiny.n_items
    assert tok["pieces"] == m.tok.vocab_size <= tok["requested"] + 1 + tok["id_tokens"]
    assert extras["decoding"] == "exact candidate log-likelihood"


@pytest.mark.parametrize("dataset", ["synthetic", "beauty"])
def test_vip5s_backbone_config_is_the_p5_jobs_config(dataset):
    """With each model's own settings for a dataset, VIP5's backbone training and the P5 job's
    training are one and the same (one cache key): the P5 row is VIP5's backbone."""
    from bench.run.runner import dataset_defaults
    from models.shared import backbone_config, training_config

    vip5 = build_config(VIP5Config, dataset_defaults("vip5", dataset), strict=False)
    p5 = build_config(P5Config, dataset_defaults("p5", dataset), strict=False)
    assert training_config(backbone_config(vip5, dataset)) == training_config(p5)


def test_the_unseen_prompts_are_never_trained_on(tiny):
    from models.prompts import TEMPLATES, UNSEEN

    m = _model(P5, P5Config, tiny, train_tasks="all", seq_samples_per_user=4, direct_samples_per_user=4)
    heads = {pid: TEMPLATES[pid][1].split("{")[0] for pid in UNSEEN.values()}  # each unseen template's fixed opening
    assert all(len(h) > 10 for h in heads.values())
    texts = [p.text for p in m._samples(np.random.default_rng(0), m.render, list(tiny.tasks))]
    assert len(texts) > 500
    for pid, head in heads.items():
        assert not any(t.startswith(head) for t in texts), pid


def test_explanation_samples_per_review(tiny):
    reviews = len(tiny.review_split("train"))
    for n in (1, 3):
        m = _model(P5, P5Config, tiny, expl_samples_per_review=n)
        samples = m._samples(np.random.default_rng(0), m.render, ["explanation"])
        assert len(samples) == n * reviews


def test_a_randomly_initialised_embedding_gets_its_own_learning_rate_and_beta2(tiny):
    m = _model(P5, P5Config, tiny, embedding_lr_scale=30.0, embedding_beta2=0.98)
    opt = m.optimizer(steps=10)[0]
    emb = m.net.t5.get_input_embeddings().weight
    (group,) = [g for g in opt.param_groups if any(p is emb for p in g["params"])]
    assert group["betas"] == (0.9, 0.98) and group["initial_lr"] == pytest.approx(30.0 * m.cfg.lr)
    others = [g for g in opt.param_groups if g is not group]
    assert others and all(g["betas"] == (0.9, 0.999) and g["initial_lr"] == m.cfg.lr for g in others)


def test_id_embeddings_are_the_id_tokens_rows_of_the_embedding(tiny):
    m = _model(P5, P5Config, tiny)  # whole id tokens: one row per user and per item
    vectors = m.id_embeddings()
    emb = m.net.t5.get_input_embeddings().weight.detach().numpy()
    (u_tok,) = m.tok.encode(m.render.user(3))
    item_tok = m.item_tokens[5][0]  # its last token is the end of sequence
    assert np.allclose(vectors["users"][3], emb[u_tok]) and np.allclose(vectors["items"][5], emb[item_tok])
    assert vectors["users"].shape == (tiny.n_users, emb.shape[1]) and vectors["items"].shape[0] == tiny.n_items
