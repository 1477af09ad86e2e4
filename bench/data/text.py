"""A word vocabulary for the text-generating baselines (Attn2Seq, NRT, PETER).

Words are the tokens of `bench.metrics.tokenize`, the same tokeniser BLEU uses, so a model is
trained on exactly the units it is scored on. Special tokens take the first ids:
``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from bench.metrics import tokenize

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


class Vocab:
    """Word <-> id map built from training texts (most frequent words first)."""

    pad, bos, eos, unk = 0, 1, 2, 3

    def __init__(self, words: Sequence[str]):
        self.words = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Vocab:
        """Keep words seen at least `min_count` times, at most `max_size` ids in all (specials
        included); ties in frequency are broken alphabetically so the vocabulary is deterministic."""
        counts = Counter(w for t in texts for w in tokenize(t))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        return cls(ranked)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_words: int | None = None, bos: bool = False, eos: bool = False) -> list[int]:
        """Word ids of `text` (unknown words -> <unk>), cut to `max_words` before <bos>/<eos> are added."""
        ids = [self.index.get(w, self.unk) for w in tokenize(text)][:max_words]
        return [self.bos] * bos + ids + [self.eos] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first <eos>, specials other than <unk> dropped, joined by spaces
        (re-tokenising the result gives the same words, so BLEU sees what the model produced)."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i not in (self.pad, self.bos):
                out.append(self.words[i])
        return " ".join(out)


def pad_batch(seqs: Sequence[Sequence[int]], pad: int = Vocab.pad, length: int | None = None):
    """Right-pad id lists to a LongTensor [B, L]; L = the longest list unless `length` is given."""
    import torch

    length = max((len(s) for s in seqs), default=0) if length is None else length
    out = torch.full((len(seqs), length), pad, dtype=torch.long)
    for n, s in enumerate(seqs):
        s = list(s)[:length]
        out[n, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def greedy_decode(step, batch_size: int, max_words: int, device="cpu") -> list[list[int]]:
    """Batched greedy decoding from <bos> until every row has produced <eos> or `max_words` words.

    ``step(tokens)`` gets the tokens so far [B, t] (column 0 = <bos>) and returns next-token
    logits [B, V]; a recurrent model keeps its state in a closure and reads only the last
    column. <pad>, <bos> and <unk> are never chosen: none of them can match a reference word.
    Returns each row's word ids without <bos> and cut before <eos>.
    """
    import torch

    tokens = torch.full((batch_size, 1), Vocab.bos, dtype=torch.long, device=device)  # [B, 1]
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)  # [B]
    for _ in range(max_words + 1):  # the last step can only still produce <eos>
        logits = step(tokens).clone()  # [B, V]
        logits[:, [Vocab.pad, Vocab.bos, Vocab.unk]] = -float("inf")
        nxt = logits.argmax(-1).masked_fill(done, Vocab.pad)  # [B]; finished rows emit padding
        tokens = torch.cat([tokens, nxt[:, None]], 1)  # [B, t+1]
        done |= nxt == Vocab.eos
        if bool(done.all()):
            break
    out = []
    for row in tokens[:, 1:].tolist():
        row = row[: row.index(Vocab.eos)] if Vocab.eos in row else row
        out.append(row[:max_words])
    return out
