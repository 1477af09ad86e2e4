import torch

from models.trie import Trie, allowed_tokens_fn


def test_trie_next_tokens():
    t = Trie([[5, 6, 1], [5, 7, 1], [8, 1]])
    assert sorted(t.next_tokens([])) == [5, 8]
    assert sorted(t.next_tokens([5])) == [6, 7]
    assert t.next_tokens([5, 6]) == [1]
    assert t.next_tokens([9]) == []


def test_allowed_tokens_fn_follows_each_query_trie():
    fn = allowed_tokens_fn([Trie([[5, 1]]), Trie([[8, 1]])], eos_id=1, pad_id=0)
    assert fn(0, torch.tensor([0])) == [5]
    assert fn(1, torch.tensor([0])) == [8]
    assert fn(1, torch.tensor([0, 8])) == [1]
    assert fn(1, torch.tensor([0, 8, 1])) == [0]  # finished beam: padding only
