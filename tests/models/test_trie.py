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


def test_excluded_ids_are_never_decoded_even_when_they_share_a_prefix():
    # items [5, 6], [5, 7] and [8]; query 0 leaves out [5, 6] and [8], query 1 leaves out nothing
    trie = Trie([[5, 6, 1], [5, 7, 1], [8, 1]])
    fn = allowed_tokens_fn([trie, trie], eos_id=1, pad_id=0, exclude=[[[5, 6, 1], [8, 1]], None])
    assert fn(0, torch.tensor([0])) == [5]  # 8 leads only to an excluded item; 5 still leads to [5, 7]
    assert fn(0, torch.tensor([0, 5])) == [7]
    assert sorted(fn(1, torch.tensor([0]))) == [5, 8]
    assert sorted(fn(1, torch.tensor([0, 5]))) == [6, 7]
    # a query whose every item is excluded ends its beams (they decode to no item, counted invalid)
    none_left = allowed_tokens_fn([Trie([[8, 1]])], eos_id=1, pad_id=0, exclude=[[[8, 1]]])
    assert none_left(0, torch.tensor([0])) == [1]
