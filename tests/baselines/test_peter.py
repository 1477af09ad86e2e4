"""PETER / PETER+: the attention mask, what each position can see, and the feature hint."""

import torch

from baselines.peter import PETER, PETERConfig, PETERPlus, PETERPlusConfig, peter_mask
from bench.data import ExplainQuery
from bench.data.text import Vocab
from bench.registry import get_model
from bench.train import FitLog

SMALL = {"d_model": 16, "ffn": 32, "layers": 2, "dropout": 0.0, "epochs": 1}


def test_peter_mask_pattern():
    # rows = queries, True = blocked: user (0) sees user and item; everything else left to right
    expected = torch.tensor([
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ], dtype=torch.bool)
    assert torch.equal(peter_mask(5), expected)


def test_user_position_sees_only_ids_and_text_positions_only_the_past(tiny):
    m = PETER(PETERConfig(**SMALL), tiny, task="explanation")
    m.net.eval()
    user, item = torch.tensor([0, 0]), torch.tensor([1, 2])
    text = torch.tensor([[Vocab.bos, 5, 6, 7], [Vocab.bos, 5, 6, 8]])
    h = m.net(user, item, text)  # [2, 6, d]
    assert h.shape == (2, 6, 16)
    other = m.net(user, item, torch.tensor([[Vocab.bos, 9, 9, 9], [Vocab.bos, 4, 4, 4]]))
    assert torch.allclose(h[:, :3], other[:, :3], atol=1e-6)  # user, item, <bos> ignore later words
    # the user position depends on the item (the PETER mask), so the rating can too
    assert not torch.allclose(h[0, 0], h[1, 0])
    # last word differs between rows 0 and 1 only at the final position
    same_item = m.net(torch.tensor([0, 0]), torch.tensor([1, 1]), text)
    assert torch.allclose(same_item[0, :5], same_item[1, :5], atol=1e-6)
    assert not torch.allclose(same_item[0, 5], same_item[1, 5])


def test_peter_plus_is_peter_with_the_feature_hint(tiny):
    assert get_model("peter_plus").cls is PETERPlus and issubclass(PETERPlus, PETER)
    assert PETERPlusConfig().feature_hint and not PETERConfig().feature_hint
    plain = PETER(PETERConfig(**SMALL), tiny, task="explanation")
    plus = PETERPlus(PETERPlusConfig(**SMALL), tiny, task="explanation")
    word = next(w for w in plus.vocab.words[4:] if w.isalpha())
    hints = plus._hints([word, "never-seen-word and more words"])
    assert plain._hints([word]).shape == (1, 0)
    assert hints.tolist() == [[plus.vocab.index[word], Vocab.pad], [Vocab.unk, Vocab.unk]]


def test_hint_changes_the_text_but_not_the_rating(tiny):
    plus = PETERPlus(PETERPlusConfig(**SMALL), tiny, task="explanation")
    plus.fit(FitLog(None, "bleu-4", verbose=False))
    plus.net.eval()
    user, item = torch.tensor([0, 0]), torch.tensor([1, 1])
    feats = [w for w in plus.vocab.words[4:] if w.isalpha()][:2]
    bos = torch.full((2, 1), Vocab.bos)
    h = plus.net(user, item, torch.cat([plus._hints(feats), bos], 1))  # [2, 2 + 2 + 1, d]
    assert torch.allclose(h[0, :2], h[1, :2], atol=1e-6)  # user/item positions never see the hint
    assert not torch.allclose(h[0, -1], h[1, -1])  # <bos> does: the first word can follow the hint
    r = plus.predict_ratings([ExplainQuery(0, 1, f) for f in feats])
    assert r[0] == r[1] and plus.r_min <= r[0] <= plus.r_max
