"""The word vocabulary, padding and greedy decoding shared by the text-generating baselines."""

import torch

from bench.data.text import Vocab, greedy_decode, pad_batch
from bench.metrics import tokenize

TEXTS = ["the fit is great", "the fit is okay!", "the zipper is great"]


def test_build_orders_by_count_then_alphabet_after_the_specials():
    v = Vocab.build(TEXTS)
    # the:3 is:3 fit:2 great:2 then ! okay zipper once each; ties alphabetical
    assert v.words == ["<pad>", "<bos>", "<eos>", "<unk>", "is", "the", "fit", "great", "!", "okay", "zipper"]
    assert (v.pad, v.bos, v.eos, v.unk) == (0, 1, 2, 3)


def test_min_count_and_max_size():
    assert Vocab.build(TEXTS, min_count=2).words[4:] == ["is", "the", "fit", "great"]
    v = Vocab.build(TEXTS, max_size=6)  # 4 specials + the 2 most frequent words
    assert len(v) == 6 and v.words[4:] == ["is", "the"]


def test_round_trip_matches_the_bleu_tokeniser():
    v = Vocab.build(TEXTS)
    ids = v.encode("The fit is okay!", bos=True, eos=True)
    assert ids[0] == v.bos and ids[-1] == v.eos
    text = v.decode(ids)
    assert text == "the fit is okay !"
    assert tokenize(text) == tokenize("The fit is okay!")


def test_unknown_words_map_to_unk_and_decode_visibly():
    v = Vocab.build(TEXTS)
    ids = v.encode("the laces are great")
    assert ids == [v.index["the"], v.unk, v.unk, v.index["great"]]
    assert v.decode(ids) == "the <unk> <unk> great"


def test_encode_cuts_words_before_adding_bos_eos_and_decode_stops_at_eos():
    v = Vocab.build(TEXTS)
    assert v.encode("the fit is great", max_words=2, eos=True) == [v.index["the"], v.index["fit"], v.eos]
    assert v.decode([v.bos, v.index["fit"], v.pad, v.eos, v.index["great"]]) == "fit"


def test_pad_batch_right_pads_and_cuts():
    t = pad_batch([[5, 6, 7], [8]])
    assert t.dtype == torch.long and t.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert pad_batch([[5, 6, 7], [8]], length=2).tolist() == [[5, 6], [8, 0]]
    assert pad_batch([[], []], length=2).tolist() == [[0, 0], [0, 0]]


def test_greedy_decode_stops_rows_independently_and_never_picks_specials():
    V = 8
    # row 0 says 5, 6, <eos>; row 1 always prefers <unk> (banned), then 7; it never ends
    def step(tokens):
        t = tokens.shape[1]
        logits = torch.zeros(2, V)
        logits[0, [5, 6, 2][min(t - 1, 2)]] = 10.0
        logits[1, Vocab.unk] = 20.0
        logits[1, Vocab.pad] = 20.0
        logits[1, 7] = 10.0
        return logits

    out = greedy_decode(step, batch_size=2, max_words=4)
    assert out == [[5, 6], [7, 7, 7, 7]]
