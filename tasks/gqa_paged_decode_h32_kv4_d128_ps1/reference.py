"""PyTorch reference for gqa_paged_decode_h32_kv4_d128_ps1 (our own, from the definition's text).

Each sequence b reads its pages kv_indices[kv_indptr[b]:kv_indptr[b+1]] (page size 1: a page is a token);
each of the 32 query heads attends over the keys of its KV head (8 query heads share one); fp32 math, bf16
output, and the log-sum-exp of the scaled logits in base 2. A sequence with no pages gets a zero output and
an lse of -inf.
"""

import math

import torch


@torch.no_grad()
def run(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, dim = q.shape
    kv_heads = k_cache.shape[2]
    group = heads // kv_heads
    out = torch.zeros(batch, heads, dim, dtype=torch.bfloat16, device=q.device)
    lse = torch.full((batch, heads), -math.inf, dtype=torch.float32, device=q.device)
    bounds = kv_indptr.tolist()
    for b in range(batch):
        lo, hi = bounds[b], bounds[b + 1]
        if hi <= lo:
            continue
        pages = kv_indices[lo:hi].long()
        k = k_cache[pages, 0].float().repeat_interleave(group, dim=1)  # [T, heads, dim]
        v = v_cache[pages, 0].float().repeat_interleave(group, dim=1)
        logits = torch.einsum("hd,thd->ht", q[b].float(), k) * sm_scale  # [heads, T]
        lse[b] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
        out[b] = torch.einsum("ht,thd->hd", torch.softmax(logits, dim=-1), v).to(torch.bfloat16)
    return out, lse
