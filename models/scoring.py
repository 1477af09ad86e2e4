"""Exact candidate scoring for the direct task: rank a prompt's candidates by the model's
log-likelihood of each candidate's id, log p(id tokens + end of sequence | prompt).

Beam search over 100 candidates only approximates that ranking (a candidate whose first token
is unlikely falls out of the beams however likely the rest is); scoring every candidate is
exact and, done this way, cheap. The encoder runs once per prompt. The candidates are then laid
end to end in decoder rows of G = `GROUP` blocks of T positions, each block one candidate's
teacher-forced id, with a block-diagonal causal mask so that no block sees another: every
position computes exactly what it would in a row of its own (T5's relative position bias only
depends on distances inside a block), while the cross-attention reads the prompt's encoder
states once per row rather than once per candidate. (Expanding the keys and values over one row
per candidate instead makes every matmul copy them once per candidate.)
"""

from __future__ import annotations

import torch

LOGITS_BUDGET = 2**25  # floats of [rows, G*T, vocab] logits computed at once (~128 MB in float32)
# candidates per decoder row: fewer rows share the cross-attention more, but the self-attention
# computes [G*T, G*T] scores of which only G*T*T are used; 50 was the fastest for 100 candidates
GROUP = 50


def _block_causal_mask(n: int, t: int, dtype: torch.dtype, device) -> torch.Tensor:
    """-> [1, 1, n*t, n*t] additive mask: 0 where position i may attend to j (same block, j <= i),
    the dtype's minimum elsewhere (the "inverted" 4D form Hugging Face's T5 takes as it is)."""
    pos = torch.arange(n * t, device=device)
    allowed = (pos[:, None] // t == pos[None, :] // t) & (pos[None, :] <= pos[:, None])
    mask = torch.zeros((n * t, n * t), dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


@torch.no_grad()
def candidate_log_likelihoods(t5, enc: torch.Tensor, mask: torch.Tensor, candidates: list[list[list[int]]],
                              pad_id: int, group: int | None = None) -> list[torch.Tensor]:
    """enc [B, L, d] encoder states of B prompts, mask [B, L]; candidates[b] = the token ids of
    prompt b's candidates, each ending with the end-of-sequence id -> per prompt a tensor [N_b]
    of summed token log-probabilities (no length normalisation: the model's likelihood)."""
    group = group or GROUP
    b_all = len(candidates)
    n = max(len(toks) for toks in candidates)
    g = min(group, n)  # G candidates per decoder row
    r = -(-n // g)  # R rows per prompt
    t = max(len(x) for toks in candidates for x in toks)
    # [B, R*G, T]: start token, then the id without its eos
    dec_in = torch.full((b_all, r * g, t), pad_id, dtype=torch.long)
    labels = torch.full((b_all, r * g, t), -100, dtype=torch.long)  # [B, R*G, T]: the id with its eos; -100 = padding
    for b, toks in enumerate(candidates):
        for i, x in enumerate(toks):
            dec_in[b, i, 0] = t5.config.decoder_start_token_id
            dec_in[b, i, 1 : len(x)] = torch.tensor(x[:-1], dtype=torch.long)
            labels[b, i, : len(x)] = torch.tensor(x, dtype=torch.long)
    dec_in = dec_in.view(b_all * r, g * t).to(enc.device)  # [B*R, G*T]
    labels = labels.view(b_all * r, g * t).to(enc.device)
    owner = torch.arange(b_all, device=enc.device).repeat_interleave(r)  # [B*R]: the prompt of each row
    block_mask = _block_causal_mask(g, t, t5.dtype, enc.device)  # [1, 1, G*T, G*T]
    rows = max(1, LOGITS_BUDGET // (g * t * t5.config.vocab_size))
    scores = []
    for s in range(0, b_all * r, rows):
        e, who = slice(s, s + rows), owner[s : s + rows]
        logits = t5(encoder_outputs=(enc[who],), attention_mask=mask[who], decoder_input_ids=dec_in[e],
                    decoder_attention_mask=block_mask.expand(len(who), -1, -1, -1),
                    use_cache=False).logits  # [rows, G*T, V]
        logp = torch.log_softmax(logits.float(), dim=-1)
        tok_lp = logp.gather(-1, labels[e].clamp(min=0).unsqueeze(-1)).squeeze(-1)  # [rows, G*T]
        scores.append((tok_lp * (labels[e] != -100)).view(-1, g, t).sum(dim=2).cpu())  # [rows, G]
    flat = torch.cat(scores).view(b_all, r * g)  # [B, R*G]
    return [flat[b, : len(toks)] for b, toks in enumerate(candidates)]
