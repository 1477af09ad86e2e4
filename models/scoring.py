"""Exact candidate scoring for the direct task: rank a prompt's candidates by the model's
log-likelihood of each candidate's id, log p(id tokens + end of sequence | prompt).

Beam search over 100 candidates only approximates that ranking (a candidate whose first token
is unlikely falls out of the beams however likely the rest is); scoring every candidate is
exact and, done this way, cheap: the encoder runs once per prompt, the decoder's
cross-attention keys and values are computed once per prompt and shared (not copied) by the
candidates' rows, and each candidate costs only a teacher-forced pass of its few id tokens.
"""

from __future__ import annotations

import torch


def _cross_attention_kv(t5, enc: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """enc [B, L, d], mask [B, L] -> per decoder layer (keys, values), each [B, heads, L, d_kv]:
    one decoder step with a cache makes T5 (and the `adapters` T5) compute them exactly as in training."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    start = torch.full((enc.shape[0], 1), t5.config.decoder_start_token_id, dtype=torch.long, device=enc.device)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())  # filled in place (the `adapters` T5 returns a tuple)
    t5(encoder_outputs=(enc,), attention_mask=mask, decoder_input_ids=start, past_key_values=cache, use_cache=True)
    return [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]


@torch.no_grad()
def candidate_log_likelihoods(t5, enc: torch.Tensor, mask: torch.Tensor, candidates: list[list[list[int]]],
                              pad_id: int) -> list[torch.Tensor]:
    """enc [B, L, d] encoder states of B prompts, mask [B, L]; candidates[b] = the token ids of
    prompt b's candidates, each ending with the end-of-sequence id -> per prompt a tensor [N_b]
    of summed token log-probabilities (no length normalisation: the model's likelihood)."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    kv = _cross_attention_kv(t5, enc, mask)
    start_id = t5.config.decoder_start_token_id
    out = []
    for b, toks in enumerate(candidates):
        n, t = len(toks), max(len(x) for x in toks)
        dec_in = torch.full((n, t), pad_id, dtype=torch.long)  # [N, T]: start token, then the id without its eos
        labels = torch.full((n, t), -100, dtype=torch.long)  # [N, T]: the id with its eos; -100 = padding
        for i, x in enumerate(toks):
            dec_in[i, 0] = start_id
            dec_in[i, 1 : len(x)] = torch.tensor(x[:-1], dtype=torch.long)
            labels[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        dec_in, labels = dec_in.to(enc.device), labels.to(enc.device)
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        for layer, (k, v) in enumerate(kv):
            # expand, not repeat: the N rows share prompt b's keys and values without copies
            cache.cross_attention_cache.update(k[b : b + 1].expand(n, -1, -1, -1), v[b : b + 1].expand(n, -1, -1, -1), layer)
            cache.is_updated[layer] = True
        logits = t5(encoder_outputs=(enc[b : b + 1].expand(n, -1, -1),), attention_mask=mask[b : b + 1].expand(n, -1),
                    decoder_input_ids=dec_in, past_key_values=cache, use_cache=True).logits  # [N, T, V]
        logp = torch.log_softmax(logits.float(), dim=-1)
        tok_lp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # [N, T]
        out.append((tok_lp * (labels != -100)).sum(dim=1).cpu())  # [N]
    return out
