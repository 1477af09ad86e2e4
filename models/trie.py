"""Prefix trie over token sequences, for beam search constrained to valid item ids."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


class Trie:
    """Maps every prefix of the stored sequences to the tokens that may follow it, and counts the
    sequences under each prefix (so that a query can leave some of them out: `allowed_tokens_fn`)."""

    def __init__(self, sequences: Iterable[Sequence[int]] = ()):
        self.root: dict = {}
        self.count: Counter = Counter()  # prefix tuple -> stored sequences that start with it
        for seq in sequences:
            self.add(seq)

    def add(self, seq: Sequence[int]) -> None:
        node = self.root
        for n, t in enumerate(seq, 1):
            node = node.setdefault(int(t), {})
            self.count[tuple(int(x) for x in seq[:n])] += 1

    def next_tokens(self, prefix: Sequence[int]) -> list[int]:
        node = self.root
        for t in prefix:
            node = node.get(int(t))
            if node is None:
                return []
        return list(node)


def prefix_counts(sequences: Iterable[Sequence[int]] | None) -> Counter:
    """prefix tuple -> how many of `sequences` start with it (the items one query leaves out)."""
    out: Counter = Counter()
    for seq in sequences or ():
        seq = tuple(int(t) for t in seq)
        out.update(seq[:n] for n in range(1, len(seq) + 1))
    return out


def allowed_tokens_fn(tries: Sequence[Trie], eos_id: int, pad_id: int,
                      exclude: Sequence[Iterable[Sequence[int]] | None] | None = None):
    """A `prefix_allowed_tokens_fn` for Hugging Face `generate`: beam rows of query b follow tries[b],
    less the stored sequences in exclude[b] (a token whose every continuation is excluded is not
    allowed: the beam search never spends a beam on an excluded item).

    Decoder inputs start with the decoder start token, which is not part of the stored ids.
    A finished beam (past its end-of-sequence) may only continue with padding.
    """

    banned = [prefix_counts(seqs) for seqs in exclude] if exclude is not None else None

    def fn(batch_id: int, input_ids) -> list[int]:
        prefix = input_ids.tolist()[1:]
        if eos_id in prefix:
            return [pad_id]
        trie = tries[batch_id]
        allowed = trie.next_tokens(prefix)
        if banned is not None and banned[batch_id] and allowed:
            gone, key = banned[batch_id], tuple(prefix)
            allowed = [t for t in allowed if gone.get(key + (t,), 0) < trie.count[key + (t,)]]
            if not allowed:  # only a beam that followed a banned item here: end it (decodes to no item)
                return [eos_id]
        return allowed or [eos_id]

    return fn
