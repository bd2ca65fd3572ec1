"""Seed for the FP8 block-scale MoE (DeepSeek-V3 routing, 32 local experts): correct first, one GEMV per slot.

Three Triton kernels, no PyTorch compute:
1. routing, one program per token: sigmoid, bias, group scores (sum of each group's best two), the best 4
   groups, the best 8 experts inside them by argmax-and-mask, weights normalised and scaled;
2. GEMM1 + SwiGLU, one program per (token, expert slot, 128 intermediate columns): the gate and up rows of the
   slot's expert, FP8 times 128x128 block scales, fp32 accumulation, silu(up) * gate; slots whose expert is not
   local are skipped;
3. GEMM2 + combine, one program per (token, 128 hidden columns): the 8 slots' down projections weighted and
   summed, stored as bf16.
Every (token, slot) re-reads its expert's weights, so this is far from the library at many tokens; grouping
tokens per expert (a grouped GEMM on FP8 tensor cores) is the next step.
"""

import torch
import triton
import triton.language as tl

TOP_K = 8
N_GROUP = 8
TOPK_GROUP = 4
BLOCK = 128
NUM_WARPS = 4


@triton.jit
def _route(logits_ptr, bias_ptr, ids_ptr, w_ptr, scaling, E: tl.constexpr, NG: tl.constexpr,
           KG: tl.constexpr, K: tl.constexpr):
    t = tl.program_id(0)
    offs = tl.arange(0, E)
    x = tl.load(logits_ptr + t * E + offs).to(tl.float32)
    s = 1.0 / (1.0 + tl.exp(-x))
    b = s + tl.load(bias_ptr + offs).to(tl.float32)
    GS: tl.constexpr = E // NG
    g = tl.reshape(b, [NG, GS])
    col = tl.arange(0, GS)
    first = tl.argmax(g, 1)
    top1 = tl.max(g, 1)
    top2 = tl.max(tl.where(col[None, :] == first[:, None], float("-inf"), g), 1)
    gscore = top1 + top2
    gi = tl.arange(0, NG)
    keep = gi < 0
    for _ in tl.static_range(KG):
        j = tl.argmax(gscore, 0)
        keep = keep | (gi == j)
        gscore = tl.where(gi == j, float("-inf"), gscore)
    keep_e = tl.reshape(tl.broadcast_to(keep[:, None], [NG, GS]), [E])
    cand = tl.where(keep_e, b, float("-inf"))
    kk = tl.arange(0, K)
    ids = tl.zeros([K], tl.int32)
    ws = tl.zeros([K], tl.float32)
    for k in tl.static_range(K):
        j = tl.argmax(cand, 0)
        ids = tl.where(kk == k, j, ids)
        ws = tl.where(kk == k, tl.sum(tl.where(offs == j, s, 0.0), 0), ws)
        cand = tl.where(offs == j, float("-inf"), cand)
    ws = ws / (tl.sum(ws, 0) + 1e-20) * scaling
    tl.store(ids_ptr + t * K + kk, ids)
    tl.store(w_ptr + t * K + kk, ws)


@triton.jit
def _gemm1_swiglu(hs_ptr, hs_scale_ptr, w13_ptr, s13_ptr, ids_ptr, c_ptr, offset, T,
                  H: tl.constexpr, I: tl.constexpr, LOCAL: tl.constexpr, K: tl.constexpr, BLOCK: tl.constexpr):
    slot = tl.program_id(0)
    nb = tl.program_id(1)
    t = slot // K
    le = tl.load(ids_ptr + slot) - offset
    if (le >= 0) & (le < LOCAL):
        le64 = le.to(tl.int64)
        rows = nb * BLOCK + tl.arange(0, BLOCK)
        kcol = tl.arange(0, BLOCK)
        HB: tl.constexpr = H // BLOCK
        acc_g = tl.zeros([BLOCK], tl.float32)
        acc_u = tl.zeros([BLOCK], tl.float32)
        base = w13_ptr + le64 * (2 * I) * H
        sbase = s13_ptr + le64 * (2 * I // BLOCK) * HB
        for kb in range(0, HB):
            k = kb * BLOCK + kcol
            a = tl.load(hs_ptr + t * H + k).to(tl.float32) * tl.load(hs_scale_ptr + kb * T + t)
            wg = tl.load(base + rows[:, None] * H + k[None, :]).to(tl.float32)
            wu = tl.load(base + (I + rows)[:, None] * H + k[None, :]).to(tl.float32)
            acc_g += tl.sum(wg * a[None, :], 1) * tl.load(sbase + nb * HB + kb)
            acc_u += tl.sum(wu * a[None, :], 1) * tl.load(sbase + (I // BLOCK + nb) * HB + kb)
        c = acc_u / (1.0 + tl.exp(-acc_u)) * acc_g
        tl.store(c_ptr + slot.to(tl.int64) * I + rows, c)


@triton.jit
def _gemm2_combine(c_ptr, w2_ptr, s2_ptr, ids_ptr, w_ptr, out_ptr, offset,
                   H: tl.constexpr, I: tl.constexpr, LOCAL: tl.constexpr, K: tl.constexpr, BLOCK: tl.constexpr):
    t = tl.program_id(0)
    hb = tl.program_id(1)
    rows = hb * BLOCK + tl.arange(0, BLOCK)
    icol = tl.arange(0, BLOCK)
    IB: tl.constexpr = I // BLOCK
    HB: tl.constexpr = H // BLOCK
    total = tl.zeros([BLOCK], tl.float32)
    for k in range(0, K):
        slot = t * K + k
        le = tl.load(ids_ptr + slot) - offset
        if (le >= 0) & (le < LOCAL):
            le64 = le.to(tl.int64)
            acc = tl.zeros([BLOCK], tl.float32)
            for ib in range(0, IB):
                i = ib * BLOCK + icol
                c = tl.load(c_ptr + slot.to(tl.int64) * I + i)
                w = tl.load(w2_ptr + le64 * H * I + rows[:, None] * I + i[None, :]).to(tl.float32)
                acc += tl.sum(w * c[None, :], 1) * tl.load(s2_ptr + (le64 * HB + hb) * IB + ib)
            total += acc * tl.load(w_ptr + slot)
    tl.store(out_ptr + t.to(tl.int64) * H + rows, total.to(tl.bfloat16))


def run(routing_logits, routing_bias, hidden_states, hidden_states_scale, gemm1_weights, gemm1_weights_scale,
        gemm2_weights, gemm2_weights_scale, local_expert_offset, routed_scaling_factor):
    tokens, hidden = hidden_states.shape
    experts = routing_logits.shape[1]
    local = gemm1_weights.shape[0]
    inter = gemm2_weights.shape[2]
    device = hidden_states.device
    out = torch.empty(tokens, hidden, dtype=torch.bfloat16, device=device)
    if tokens == 0:
        return out
    ids = torch.empty(tokens * TOP_K, dtype=torch.int32, device=device)
    weights = torch.empty(tokens * TOP_K, dtype=torch.float32, device=device)
    c = torch.empty(tokens * TOP_K, inter, dtype=torch.float32, device=device)
    _route[(tokens,)](routing_logits, routing_bias, ids, weights, float(routed_scaling_factor), E=experts,
                      NG=N_GROUP, KG=TOPK_GROUP, K=TOP_K, num_warps=4)
    _gemm1_swiglu[(tokens * TOP_K, inter // BLOCK)](
        hidden_states, hidden_states_scale, gemm1_weights, gemm1_weights_scale, ids, c, int(local_expert_offset),
        tokens, H=hidden, I=inter, LOCAL=local, K=TOP_K, BLOCK=BLOCK, num_warps=NUM_WARPS,
    )
    _gemm2_combine[(tokens, hidden // BLOCK)](
        c, gemm2_weights, gemm2_weights_scale, ids, weights, out, int(local_expert_offset),
        H=hidden, I=inter, LOCAL=local, K=TOP_K, BLOCK=BLOCK, num_warps=NUM_WARPS,
    )
    return out
