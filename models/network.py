"""The VIP5/P5 network: a Hugging Face T5 whose input embedding is token + whole-word +
category embedding, with image placeholder tokens overwritten by a mapping network applied
to item visual features, and bottleneck adapters on a frozen backbone (VIP5) or full
fine-tuning (P5). Geng et al., "VIP5: Towards Multimodal Foundation Models for
Recommendation", Findings of EMNLP 2023, Section 3.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

MAX_WORDS = 1024  # whole-word embedding rows, as the official code: one per word of a 1,024-token prompt

# random-init backbone shapes: "small" is t5-small's (6+6 layers, d_model 512, 8 heads)
BACKBONE_SIZES = {
    "tiny": dict(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4),
    "small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8),
}


# t5-small's vocabulary: a random-init "small" backbone keeps its 32,128 embedding rows even when
# our SentencePiece tokenizer uses fewer (the rest are never fed in, and never decoded: see
# PromptTokenizer.decode), so parameter counts and trainable shares compare with the paper's t5-small
BACKBONE_VOCAB = {"small": 32128}


def build_backbone(backbone: str | None, size: str, vocab_size: int, dropout: float):
    """A T5ForConditionalGeneration from a local directory (never downloaded), or random init."""
    from transformers import T5Config, T5ForConditionalGeneration

    if backbone:
        path = Path(backbone)
        if not (path / "config.json").exists():
            from bench.errors import UsageError

            raise UsageError(f"--set backbone={backbone}: not a local Hugging Face model directory (no config.json)")
        t5 = T5ForConditionalGeneration.from_pretrained(str(path), local_files_only=True, dropout_rate=dropout)
        if t5.get_input_embeddings().num_embeddings < vocab_size:
            t5.resize_token_embeddings(vocab_size)  # room for <img>
        return t5
    cfg = T5Config(
        vocab_size=max(vocab_size, BACKBONE_VOCAB.get(size, 0)),
        dropout_rate=dropout,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        **BACKBONE_SIZES[size],
    )
    return T5ForConditionalGeneration(cfg)


class MappingNetwork(nn.Module):
    """Visual feature -> k soft tokens: Linear(f, d*k/2) -> Tanh -> Linear(d*k) -> LayerNorm(d)."""

    def __init__(self, feat_dim: int, d_model: int, k: int):
        super().__init__()
        self.k, self.d = k, d_model
        self.net = nn.Sequential(
            nn.Linear(feat_dim, d_model * k // 2), nn.Tanh(), nn.Linear(d_model * k // 2, d_model * k)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [M, f] -> [M * k, d] (the k tokens of each mention, in order)."""
        return self.norm(self.net(feats).view(-1, self.k, self.d)).view(-1, self.d)


class VIP5Net(nn.Module):
    def __init__(self, t5, img_id: int, image_tokens: int, feat_dim: int | None):
        super().__init__()
        self.t5 = t5
        d = t5.config.d_model
        self.img_id = img_id
        self.whole_word = nn.Embedding(MAX_WORDS, d)
        self.category = nn.Embedding(2, d)  # 0 text, 1 image
        # new embeddings start at zero so a pretrained backbone's input is unchanged at step 0
        nn.init.zeros_(self.whole_word.weight)
        nn.init.zeros_(self.category.weight)
        self.mapping = MappingNetwork(feat_dim, d, image_tokens) if image_tokens and feat_dim else None

    def add_adapters(self, placement: str, reduction_factor: int) -> None:
        """Bottleneck adapters (down -> GELU -> up, residual) through the `adapters` library:
        after self-attention and feed-forward sublayers, and after cross-attention for
        ``self+cross``; then freeze everything but adapters, layer norms and our new modules."""
        import adapters
        from adapters import SeqBnConfig

        _skip_needless_attention_copies()
        adapters.init(self.t5)
        cfg = SeqBnConfig(mh_adapter=True, output_adapter=True, cross_adapter=placement == "self+cross",
                          reduction_factor=reduction_factor, non_linearity="gelu")
        self.t5.add_adapter("vip5", config=cfg)
        # train_adapter resets the active setup through a forward context before it activates ours,
        # and the library warns there that no adapter is active: a false alarm, kept off the log
        adapter_log = logging.getLogger("adapters.model_mixin")
        level = adapter_log.level
        adapter_log.setLevel(logging.ERROR)
        try:
            self.t5.train_adapter("vip5")  # freezes the backbone, activates the adapter
        finally:
            adapter_log.setLevel(level)
        for name, p in self.t5.named_parameters():
            if "layer_norm" in name:
                p.requires_grad = True

    def embed(self, input_ids, word_ids, image_feats) -> torch.Tensor:
        """input_ids, word_ids [B, L]; image_feats [M, f] for the M item mentions, in token order
        -> inputs_embeds [B, L, d]."""
        tok = self.t5.get_input_embeddings()(input_ids)  # [B, L, d]
        is_img = input_ids == self.img_id  # [B, L]
        if self.mapping is not None and image_feats is not None and len(image_feats):
            tok = tok.clone()
            tok[is_img] = self.mapping(image_feats).to(tok.dtype)  # [M*k, d] into the placeholders
        return tok + self.whole_word(word_ids) + self.category(is_img.long())

    def forward(self, input_ids, word_ids, attention_mask, image_feats, labels):
        emb = self.embed(input_ids, word_ids, image_feats)
        # no decoder cache in training: nothing reuses it, and the `adapters` T5 would hand
        # transformers a legacy cache tuple (a deprecation notice in every run's log)
        return self.t5(inputs_embeds=emb, attention_mask=attention_mask, labels=labels, use_cache=False).loss


def _skip_needless_attention_copies() -> None:
    """The `adapters` library's T5 attention passes query, key and value through
    `match_attn_matrices_for_parallel` on every call, which `.repeat()`s each of them to the
    largest batch size, also when all three already have it (no Parallel composition: a
    repeat factor of 1 is still a full copy). That costs ~20% of a beam search on CPU and
    burdens the adapter side of the Table 5 time comparison with work plain T5 does not do.
    Equal batch sizes: hand the tensors through unchanged, as Hugging Face's own T5 does."""
    import adapters.models.t5.modeling_t5 as t5_adapters

    original = getattr(t5_adapters, "match_attn_matrices_for_parallel", None)
    if original is None or getattr(original, "skips_equal_batches", False):
        return

    def match(query, key, value):
        if query.shape[0] == key.shape[0] == value.shape[0]:
            return query, key, value
        return original(query, key, value)  # Parallel composition: the library's own repeat

    match.skips_equal_batches = True
    t5_adapters.match_attn_matrices_for_parallel = match

