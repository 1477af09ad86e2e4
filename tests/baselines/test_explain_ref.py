"""The reference explainer against hand-checked answers on handmade records."""

import dataclasses

import pytest

from baselines.explain_ref import ExplainRef, ExplainRefConfig
from bench.data import ExplainQuery, Review
from bench.errors import MissingDataError
from bench.train import FitLog


class _Data:
    """Just what the explainer reads: the review splits and `require`."""

    def __init__(self, reviews):
        self.reviews = reviews

    def require(self, what, model):
        assert what == "reviews"

    def review_split(self, split):
        return [r for r in self.reviews if r.split == split]


REVIEWS = [
    Review(0, 10, 5.0, "fit", "the fit is great", split="train"),
    Review(1, 11, 4.0, "fit", "fit is fine", split="train"),
    Review(2, 11, 4.0, "Fit", "fit is fine", split="train"),  # feature matched case-insensitively
    Review(3, 12, 2.0, "zipper", "zipper broke", split="train"),
    Review(4, 12, 3.0, "zipper", "zipper sticks", split="train"),  # tie with "zipper broke": first seen wins
    Review(5, 13, 1.0, "sole", "awful sole", split="train"),
    Review(6, 13, 1.0, "sole", "awful sole", split="train"),
    Review(7, 10, 5.0, "fit", "held-out text is never used", split="test"),
]


@pytest.fixture()
def ref():
    m = ExplainRef(ExplainRefConfig(), _Data(REVIEWS), task="explanation")
    m.fit(FitLog(None, "bleu-4", verbose=False))
    return m


def test_most_frequent_explanation_of_the_feature(ref):
    qs = [ExplainQuery(0, 10, "fit"), ExplainQuery(0, 10, " FIT "), ExplainQuery(9, 99, "zipper")]
    assert ref.explain(qs) == ["fit is fine", "fit is fine", "zipper broke"]


def test_falls_back_to_the_item_then_to_all_explanations(ref):
    # unknown feature: item 12's most frequent (tie -> first seen); unknown item too: the overall
    # most frequent ("fit is fine" and "awful sole" both twice; "fit is fine" was seen first)
    qs = [ExplainQuery(0, 12, "laces"), ExplainQuery(0, 999, "laces")]
    assert ref.explain(qs) == ["zipper broke", "fit is fine"]


def test_save_load_round_trip(ref, tmp_path):
    ref.save(tmp_path / "ckpt")
    fresh = ExplainRef(ExplainRefConfig(), _Data(REVIEWS), task="explanation")
    fresh.load(tmp_path / "ckpt")
    qs = [ExplainQuery(0, 12, "laces"), ExplainQuery(0, 10, "sole"), ExplainQuery(0, 999, "x")]
    assert fresh.explain(qs) == ref.explain(qs) == ["zipper broke", "awful sole", "fit is fine"]
    assert fresh.num_params() == (0, 0)


def test_fails_before_training_without_reviews(tiny):
    with pytest.raises(MissingDataError, match="explain_ref"):
        ExplainRef(ExplainRefConfig(), dataclasses.replace(tiny, reviews=[]), task="explanation")
