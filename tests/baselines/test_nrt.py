"""NRT: clipped rating predictions and the rating-conditioned tips generator."""

import torch

from baselines.nrt import NRT, NRTConfig
from bench.train import FitLog

SMALL = NRTConfig(emb_dim=8, hidden=16, mlp_layers=1, epochs=1)


def test_predicted_ratings_are_clipped_to_the_training_range(tiny):
    m = NRT(SMALL, tiny, task="explanation")
    assert (m.r_min, m.r_max) == (1.0, 5.0)
    qs = tiny.explain_queries("test")
    with torch.no_grad():
        m.net.mlp[-1].bias.fill_(100.0)
    assert set(m.predict_ratings(qs)) == {5.0}
    with torch.no_grad():
        m.net.mlp[-1].bias.fill_(-100.0)
    assert set(m.predict_ratings(qs)) == {1.0}


def test_training_starts_near_the_middle_and_stays_in_range(tiny):
    m = NRT(SMALL, tiny, task="explanation")
    r0 = m.predict_ratings(tiny.explain_queries("test"))
    assert all(2.0 < r < 4.0 for r in r0)  # the regressor's bias starts at the scale's middle
    m.fit(FitLog(None, "bleu-4", verbose=False))
    assert all(1.0 <= r <= 5.0 for r in m.predict_ratings(tiny.explain_queries("test")))


def test_the_generator_starts_from_the_predicted_rating(tiny):
    m = NRT(SMALL, tiny, task="explanation")
    user, item = torch.tensor([0]), torch.tensor([1])
    _, h_a = m.net.encode(user, item)
    with torch.no_grad():
        m.net.mlp[-1].bias.add_(1.5)  # only the rating changes
    _, h_b = m.net.encode(user, item)
    assert h_a.shape == (1, 1, 16)
    assert not torch.allclose(h_a, h_b)
