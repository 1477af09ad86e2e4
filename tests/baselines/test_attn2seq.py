"""Attn2Seq: the attention over attributes and the attribute-initialised decoder."""

import torch

from baselines.attn2seq import Attn2Seq, Attn2SeqConfig
from bench.train import FitLog

SMALL = Attn2SeqConfig(attr_dim=8, word_dim=8, hidden=16, layers=2, epochs=1)


def test_attention_weights_are_a_distribution_over_user_and_item(tiny):
    m = Attn2Seq(SMALL, tiny, task="explanation")
    m.net.eval()
    user, item = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    tokens = torch.randint(4, len(m.vocab), (3, 6))
    logits, alpha = m.net(user, item, tokens)
    assert logits.shape == (3, 6, len(m.vocab))
    assert alpha.shape == (3, 6, 2)  # one weight per attribute (user, item) at every step
    assert torch.all(alpha >= 0)
    assert torch.allclose(alpha.sum(-1), torch.ones(3, 6))


def test_every_decoder_layer_starts_from_the_attributes(tiny):
    m = Attn2Seq(SMALL, tiny, task="explanation")
    g, (h0, c0) = m.net.encode(torch.tensor([0, 0]), torch.tensor([1, 2]))
    assert g.shape == (2, 2, 8) and h0.shape == (2, 2, 16) and torch.all(c0 == 0)
    assert torch.equal(g[0, 0], g[1, 0])  # same user vector
    assert not torch.allclose(h0[:, 0], h0[:, 1])  # different items -> different initial states


def test_explanations_respect_the_length_cap(tiny):
    m = Attn2Seq(Attn2SeqConfig(**{**SMALL.__dict__, "max_words": 3}), tiny, task="explanation")
    m.fit(FitLog(None, "bleu-4", verbose=False))
    texts = m.explain(tiny.explain_queries("val"))
    assert len(texts) == len(tiny.explain_queries("val"))
    assert all(len(t.split()) <= 3 and "<" not in t for t in texts)
