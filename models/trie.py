"""Prefix trie over token sequences, for beam search constrained to valid item ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class Trie:
    """Maps every prefix of the stored sequences to the tokens that may follow it."""

    def __init__(self, sequences: Iterable[Sequence[int]] = ()):
        self.root: dict = {}
        for seq in sequences:
            self.add(seq)

    def add(self, seq: Sequence[int]) -> None:
        node = self.root
        for t in seq:
            node = node.setdefault(int(t), {})

    def next_tokens(self, prefix: Sequence[int]) -> list[int]:
        node = self.root
        for t in prefix:
            node = node.get(int(t))
            if node is None:
                return []
        return list(node)


def allowed_tokens_fn(tries: Sequence[Trie], eos_id: int, pad_id: int):
    """A `prefix_allowed_tokens_fn` for Hugging Face `generate`: beam rows of query b follow tries[b].

    Decoder inputs start with the decoder start token, which is not part of the stored ids.
    A finished beam (past its end-of-sequence) may only continue with padding.
    """

    def fn(batch_id: int, input_ids) -> list[int]:
        prefix = input_ids.tolist()[1:]
        if eos_id in prefix:
            return [pad_id]
        allowed = tries[batch_id].next_tokens(prefix)
        return allowed or [eos_id]

    return fn
