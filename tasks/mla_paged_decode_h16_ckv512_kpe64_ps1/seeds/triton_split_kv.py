"""Seed for mla_paged_decode_h16_ckv512_kpe64_ps1: split-KV MLA decode in Triton.

Grid (batch, split): a program holds all 16 heads of one sequence (16 rows, a tl.dot tile), walks its share
of the sequence's tokens BLOCK_N at a time, gathers the ckv (512) and kpe (64) rows through kv_indices and
scores q_nope . ckv + q_pe . kpe with an online softmax in base 2 (probabilities stay fp32 for the value product: tf32 on tensor cores); the ckv rows it loaded are also the values.
A second kernel merges the splits into the output and the base-2 log-sum-exp. NUM_SPLITS = 0 picks the count
from the batch size and the average sequence length.
"""

import math

import torch
import triton
import triton.language as tl

BLOCK_N = 32
NUM_SPLITS = 0
MAX_SPLITS = 32
# the automatic split count aims at this many programs per SM (132 SMs); more keeps more gathers in flight
WAVES = 2
# ... and gives each split at least this many BLOCK_N blocks of tokens
MIN_SPLIT_BLOCKS = 4
NUM_WARPS = 8
NUM_STAGES = 2
# the value product as two bf16 MMAs (P = hi + lo, both bf16) instead of one tf32 MMA on an fp32 copy of the values:
# about 16 bits of P instead of tf32's 11, and the values stay bf16 in registers
PV_BF16X2 = False


@triton.jit
def _mla_split(qn_ptr, qp_ptr, ckv_ptr, kpe_ptr, lo_ptr, hi_ptr, indices_ptr, part_o_ptr, part_ml_ptr,
               qk_scale, H: tl.constexpr, DC: tl.constexpr, DP: tl.constexpr, BLOCK_N: tl.constexpr,
               SPLITS: tl.constexpr, PV_BF16X2: tl.constexpr):
    row = tl.program_id(0)
    s = tl.program_id(1)
    start = tl.load(lo_ptr + row)
    end = tl.load(hi_ptr + row)
    chunk = tl.cdiv(end - start, SPLITS)
    lo = start + s * chunk
    hi = tl.minimum(lo + chunk, end)
    heads = tl.arange(0, H)
    dc = tl.arange(0, DC)
    dp = tl.arange(0, DP)
    qn = tl.load(qn_ptr + (row * H + heads)[:, None] * DC + dc[None, :])
    qp = tl.load(qp_ptr + (row * H + heads)[:, None] * DP + dp[None, :])
    m = tl.full([H], float("-inf"), tl.float32)
    l = tl.zeros([H], tl.float32)
    acc = tl.zeros([H, DC], tl.float32)
    for n0 in range(lo, hi, BLOCK_N):
        offs = n0 + tl.arange(0, BLOCK_N)
        ok = offs < hi
        tok = tl.load(indices_ptr + offs, mask=ok, other=0).to(tl.int64)
        kc = tl.load(ckv_ptr + tok[:, None] * DC + dc[None, :], mask=ok[:, None], other=0.0)
        kp = tl.load(kpe_ptr + tok[:, None] * DP + dp[None, :], mask=ok[:, None], other=0.0)
        scores = (tl.dot(qn, tl.trans(kc)) + tl.dot(qp, tl.trans(kp))) * qk_scale
        scores = tl.where(ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, 1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(scores - m_new[:, None])
        l = l * alpha + tl.sum(p, 1)
        if PV_BF16X2:
            p_hi = p.to(tl.bfloat16)
            p_lo = (p - p_hi.to(tl.float32)).to(tl.bfloat16)
            acc = acc * alpha[:, None] + tl.dot(p_hi, kc) + tl.dot(p_lo, kc)
        else:
            acc = acc * alpha[:, None] + tl.dot(p, kc.to(tl.float32))
        m = m_new
    part = (row * H + heads) * SPLITS + s
    tl.store(part_o_ptr + part[:, None] * DC + dc[None, :], acc)
    tl.store(part_ml_ptr + part * 2, m)
    tl.store(part_ml_ptr + part * 2 + 1, l)


@triton.jit
def _merge(part_o_ptr, part_ml_ptr, out_ptr, lse_ptr, D: tl.constexpr, SPLITS: tl.constexpr):
    row = tl.program_id(0)  # token * heads + head
    sp = tl.arange(0, SPLITS)
    cols = tl.arange(0, D)
    m = tl.load(part_ml_ptr + (row * SPLITS + sp) * 2)
    l = tl.load(part_ml_ptr + (row * SPLITS + sp) * 2 + 1)
    m_max = tl.max(m, 0)
    w = tl.where(l > 0, tl.exp2(m - m_max), 0.0)
    total = tl.sum(l * w, 0)
    acc = tl.load(part_o_ptr + (row * SPLITS + sp)[:, None] * D + cols[None, :])
    o = tl.sum(acc * w[:, None], 0)
    safe = tl.where(total > 0, total, 1.0)
    tl.store(out_ptr + row * D + cols, (o / safe).to(tl.bfloat16))
    tl.store(lse_ptr + row, tl.where(total > 0, m_max + tl.log2(safe), float("-inf")))


def _splits(rows: int, tokens: int) -> int:
    if NUM_SPLITS:
        return NUM_SPLITS
    want = max(1, WAVES * 132 // max(rows, 1))
    per_row = max(1, tokens // max(rows, 1) // (MIN_SPLIT_BLOCKS * BLOCK_N))
    return min(MAX_SPLITS, triton.next_power_of_2(min(want, per_row)))


def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, d_ckv = q_nope.shape
    d_kpe = q_pe.shape[2]
    out = torch.empty(batch, heads, d_ckv, dtype=torch.bfloat16, device=q_nope.device)
    lse = torch.empty(batch, heads, dtype=torch.float32, device=q_nope.device)
    if batch == 0:
        return out, lse
    splits = _splits(batch, kv_indices.shape[0])
    part_o = torch.empty(batch * heads * splits, d_ckv, dtype=torch.float32, device=q_nope.device)
    part_ml = torch.empty(batch * heads * splits, 2, dtype=torch.float32, device=q_nope.device)
    _mla_split[(batch, splits)](
        q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr[:-1], kv_indptr[1:], kv_indices, part_o, part_ml,
        float(sm_scale) * math.log2(math.e), H=heads, DC=d_ckv, DP=d_kpe, BLOCK_N=BLOCK_N, SPLITS=splits,
        PV_BF16X2=PV_BF16X2, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
    )
    _merge[(batch * heads,)](part_o, part_ml, out, lse, D=d_ckv, SPLITS=splits, num_warps=4)
    return out, lse
