"""PyTorch reference for mla_paged_prefill_causal_h16_ckv512_kpe64_ps1 (our own, from the definition's text).

Sequence b has queries qo_indptr[b]:qo_indptr[b+1] and keys kv_indices[kv_indptr[b]:kv_indptr[b+1]]; its
queries are the last q_len of its kv_len tokens, so query i (0-based) sees the first kv_len - q_len + i + 1
keys (causal). Scores q_nope . ckv + q_pe . kpe per head, fp32 math, bf16 output, base-2 log-sum-exp.
"""

import math

import torch

CHUNK = 128


@torch.no_grad()
def run(q_nope, q_pe, ckv_cache, kpe_cache, qo_indptr, kv_indptr, kv_indices, sm_scale):
    total_q, heads, d_ckv = q_nope.shape
    out = torch.zeros(total_q, heads, d_ckv, dtype=torch.bfloat16, device=q_nope.device)
    lse = torch.full((total_q, heads), -math.inf, dtype=torch.float32, device=q_nope.device)
    q_bounds, kv_bounds = qo_indptr.tolist(), kv_indptr.tolist()
    for b in range(len(q_bounds) - 1):
        q0, q1 = q_bounds[b], q_bounds[b + 1]
        k0, k1 = kv_bounds[b], kv_bounds[b + 1]
        if q1 <= q0 or k1 <= k0:
            continue
        q_len, kv_len = q1 - q0, k1 - k0
        tokens = kv_indices[k0:k1].long()
        ckv = ckv_cache[tokens, 0].float()
        kpe = kpe_cache[tokens, 0].float()
        for c0 in range(q0, q1, CHUNK):  # bounded memory: CHUNK x heads x kv_len logits at a time
            c1 = min(c0 + CHUNK, q1)
            logits = torch.einsum("qhd,td->qht", q_nope[c0:c1].float(), ckv)
            logits += torch.einsum("qhd,td->qht", q_pe[c0:c1].float(), kpe)
            logits *= sm_scale
            pos = kv_len - q_len + torch.arange(c0 - q0, c1 - q0, device=q_nope.device)
            visible = torch.arange(kv_len, device=q_nope.device)[None, :] <= pos[:, None]
            logits = logits.masked_fill(~visible[:, None, :], -math.inf)
            lse[c0:c1] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            out[c0:c1] = torch.einsum("qht,td->qhd", torch.softmax(logits, dim=-1), ckv).to(torch.bfloat16)
    return out, lse
