"""PyTorch reference for mla_paged_decode_h16_ckv512_kpe64_ps1 (our own, from the definition's text).

Multi-head latent attention after weight absorption: each of the 16 heads scores a token by
q_nope . ckv + q_pe . kpe, and the output is the softmax-weighted sum of the ckv rows. Page size 1, so
kv_indices lists the tokens of sequence b between kv_indptr[b] and kv_indptr[b+1]. fp32 math, bf16 output,
base-2 log-sum-exp; an empty sequence gives zeros and -inf.
"""

import math

import torch


@torch.no_grad()
def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, d_ckv = q_nope.shape
    out = torch.zeros(batch, heads, d_ckv, dtype=torch.bfloat16, device=q_nope.device)
    lse = torch.full((batch, heads), -math.inf, dtype=torch.float32, device=q_nope.device)
    bounds = kv_indptr.tolist()
    for b in range(batch):
        lo, hi = bounds[b], bounds[b + 1]
        if hi <= lo:
            continue
        tokens = kv_indices[lo:hi].long()
        ckv = ckv_cache[tokens, 0].float()  # [T, d_ckv]
        kpe = kpe_cache[tokens, 0].float()  # [T, d_kpe]
        logits = (q_nope[b].float() @ ckv.T + q_pe[b].float() @ kpe.T) * sm_scale  # [heads, T]
        lse[b] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
        out[b] = (torch.softmax(logits, dim=-1) @ ckv).to(torch.bfloat16)
    return out, lse
