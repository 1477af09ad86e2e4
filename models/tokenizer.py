"""Tokenizer for the prompts: the backbone's own (a local Hugging Face T5 directory) when it has
one, otherwise a SentencePiece model trained on the dataset's prompt corpus and cached with
the dataset. Both expose T5's conventions (pad 0, eos 1, unk 2) and a ``<img>`` token."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from models.prompts import IMG

WORD_START = "\u2581"  # SentencePiece's word-initial marker


class PromptTokenizer:
    def __init__(self, sp=None, hf=None):
        self.sp, self.hf = sp, hf
        if hf is not None:
            if IMG not in hf.get_vocab():
                hf.add_special_tokens({"additional_special_tokens": [IMG]})
            self.img_id = hf.convert_tokens_to_ids(IMG)
            self.pad_id, self.eos_id = hf.pad_token_id, hf.eos_token_id
            self.vocab_size = len(hf)
        else:
            self.img_id = sp.piece_to_id(IMG)
            self.pad_id, self.eos_id = sp.pad_id(), sp.eos_id()
            self.vocab_size = sp.get_piece_size()
        self._word_start: dict[int, bool] = {}
        # user-defined symbols: `<img>` and, with whole id tokens, every user and item id (a
        # SentencePiece model marks them by score 0, the only pieces besides the control ones)
        if hf is not None:
            self.symbols = {self.img_id}
        else:
            self.symbols = {i for i in range(self.vocab_size)
                            if sp.get_score(i) == 0.0 and not sp.is_control(i) and not sp.is_unknown(i)}
        # the bare word-start piece: SentencePiece emits it before a user-defined symbol (which
        # cannot carry the marker), so "12 <img> <img>" would cost 5 tokens instead of 3
        space = hf.convert_tokens_to_ids(WORD_START) if hf is not None else sp.piece_to_id(WORD_START)
        unk = hf.unk_token_id if hf is not None else sp.unk_id()
        self._space_id = None if space in (None, unk) else space

    # --------------------------------------------------------------- construction

    @classmethod
    def from_backbone(cls, path: Path) -> PromptTokenizer | None:
        path = Path(path)
        if not any((path / f).exists() for f in ("spiece.model", "tokenizer.json", "tokenizer_config.json")):
            return None
        from transformers import AutoTokenizer

        return cls(hf=AutoTokenizer.from_pretrained(str(path), local_files_only=True))

    @classmethod
    def train(cls, corpus: list[str], cache_dir: Path, vocab_size: int = 4000,
              id_tokens: list[str] = ()) -> PromptTokenizer:
        """Train (or load from `cache_dir`, keyed by the corpus and `id_tokens`) a SentencePiece
        unigram model; each string in `id_tokens` (user and item ids) becomes one whole piece."""
        import sentencepiece as spm

        digest = hashlib.sha256("\n".join([*corpus, "\x00ids", *id_tokens]).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"spm-{vocab_size}-{digest}.model"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(corpus), model_writer=buf, model_type="unigram",
                # the symbols count in SentencePiece's vocabulary: `vocab_size` is the text's share
                vocab_size=vocab_size + 1 + len(id_tokens),
                pad_id=0, eos_id=1, unk_id=2, bos_id=-1, user_defined_symbols=[IMG, *id_tokens],
                # digits split one by one would make item ids long; keep whole numbers as pieces when frequent
                split_digits=False, character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
                num_threads=1,  # deterministic
            )
            from bench.io import atomic_write_bytes

            atomic_write_bytes(path, buf.getvalue())
        return cls(sp=spm.SentencePieceProcessor(model_file=str(path)))

    # --------------------------------------------------------------- use

    def encode(self, text: str) -> list[int]:
        """Token ids without the end-of-sequence token. A bare word-start piece right before a
        user-defined symbol (`<img>`, a whole id token) is dropped: it says only that a new word
        begins, and the symbol starts one anyway (whole-word ids step at every symbol)."""
        ids = self.hf.encode(text, add_special_tokens=False) if self.hf is not None else self.sp.encode(text)
        if self._space_id is None:
            return ids
        return [t for t, nxt in zip(ids, ids[1:] + [None], strict=True)
                if not (t == self._space_id and nxt in self.symbols)]

    def decode(self, ids) -> str:
        # ids past our vocabulary exist only in a backbone with a larger embedding table (t5-small's
        # shape over a SentencePiece vocabulary); an untrained model may still emit them: drop them
        ids = [int(i) for i in ids if int(i) < self.vocab_size and int(i) not in (self.pad_id, self.eos_id)]
        if self.hf is not None:
            return self.hf.decode(ids, skip_special_tokens=True).strip()
        if self._space_id is not None:  # give back the word start `encode` dropped before each symbol
            ids = [t for i in ids for t in ((self._space_id, i) if i in self.symbols else (i,))]
        return self.sp.decode(ids).strip()

    def is_word_start(self, tid: int) -> bool:
        """Whether token `tid` begins a word (whole-word embedding ids step there)."""
        if tid in self.symbols:
            return True
        if tid not in self._word_start:
            piece = self.hf.convert_ids_to_tokens(tid) if self.hf is not None else self.sp.id_to_piece(tid)
            self._word_start[tid] = piece.startswith(WORD_START)
        return self._word_start[tid]

    def describe(self, requested: int) -> dict:
        """The real vocabulary (SentencePiece stops short of the requested size on a small corpus)."""
        if self.hf is not None:
            return {"kind": "backbone", "pieces": self.vocab_size}
        return {"kind": "sentencepiece", "pieces": self.vocab_size, "requested": requested,
                "id_tokens": len(self.symbols) - 1}  # whole user/item id pieces (`<img>` not counted)

    def fingerprint(self) -> str:
        """Hash of the tokenizer itself: a retrained or different tokenizer is a different model."""
        if self.hf is not None:
            blob = json.dumps(sorted(self.hf.get_vocab().items())).encode()
        else:
            blob = self.sp.serialized_model_proto()
        return hashlib.sha256(blob).hexdigest()[:12]

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.hf is not None:
            self.hf.save_pretrained(str(path / "tokenizer"))
        else:
            from bench.io import atomic_write_bytes

            atomic_write_bytes(path / "spm.model", self.sp.serialized_model_proto())

    @classmethod
    def load(cls, path: Path) -> PromptTokenizer:
        path = Path(path)
        if (path / "spm.model").exists():
            import sentencepiece as spm

            return cls(sp=spm.SentencePieceProcessor(model_file=str(path / "spm.model")))
        from transformers import AutoTokenizer

        return cls(hf=AutoTokenizer.from_pretrained(str(path / "tokenizer"), local_files_only=True))
