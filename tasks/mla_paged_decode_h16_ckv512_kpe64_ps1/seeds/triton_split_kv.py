"""Seed for mla_paged_decode_h16_ckv512_kpe64_ps1: split-KV MLA decode in Triton.

Grid (batch, split): a program holds all 16 heads of one sequence (16 rows, a tl.dot tile), walks its share
of the sequence's tokens BLOCK_N at a time, gathers the ckv (512) and kpe (64) rows through kv_indices and
scores q_nope . ckv + q_pe . kpe with an online softmax in base 2 (probabilities stay fp32 for the value product: tf32 on tensor cores); the ckv rows it loaded are also the values.
A second kernel merges the splits into the output and the base-2 log-sum-exp. NUM_SPLITS = 0 picks the count
from the batch size and the average sequence length. BALANCED replaces the per-sequence split count by chunks of
one token length for every sequence (a long sequence gets more programs than a short one), mapped to programs on
the GPU from kv_indptr.
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
# every sequence is cut into chunks of the same token length, sized so that the chunks of the whole batch give about
# WAVES programs per SM; program i finds its (sequence, chunk) from kv_indptr on the GPU. With random sequence lengths
# a per-sequence split count leaves the longest sequence's programs running alone at the end.
BALANCED = False


@triton.jit
def _chunks(indptr_ptr, batch, chunk, BP: tl.constexpr):
    """Per sequence j < batch (lanes of BP): first token, end token, chunk count and the first chunk's global index."""
    j = tl.arange(0, BP)
    start = tl.load(indptr_ptr + j, mask=j < batch, other=0)
    end = tl.load(indptr_ptr + j + 1, mask=j < batch, other=0)
    n = tl.cdiv(end - start, chunk)
    return j, start, end, n, tl.cumsum(n, 0) - n


@triton.jit
def _work_item(indptr_ptr, item, batch, chunk, BP: tl.constexpr):
    """Sequence and tokens [lo, hi) of global chunk ``item``; past the batch's last chunk b >= batch and lo >= hi."""
    j, start, end, n, first = _chunks(indptr_ptr, batch, chunk, BP)
    b = tl.sum((first + n <= item).to(tl.int32), 0)
    mine = j == b
    lo = tl.sum(tl.where(mine, start, 0), 0) + (item - tl.sum(tl.where(mine, first, 0), 0)) * chunk
    return b, lo, tl.minimum(lo + chunk, tl.sum(tl.where(mine, end, 0), 0))


@triton.jit
def _mla_split(qn_ptr, qp_ptr, ckv_ptr, kpe_ptr, lo_ptr, hi_ptr, indices_ptr, part_o_ptr, part_ml_ptr,
               qk_scale, batch, chunk, H: tl.constexpr, DC: tl.constexpr, DP: tl.constexpr, BLOCK_N: tl.constexpr,
               SPLITS: tl.constexpr, PV_BF16X2: tl.constexpr, BALANCED: tl.constexpr, BP: tl.constexpr):
    if BALANCED:
        item = tl.program_id(0)
        row, lo, hi = _work_item(lo_ptr, item, batch, chunk, BP)
        live = row < batch  # the grid's bound exceeds the chunk count: the spare programs read a valid row, store nothing
        row = tl.minimum(row, batch - 1)
    else:
        row = tl.program_id(0)
        s = tl.program_id(1)
        start = tl.load(lo_ptr + row)
        end = tl.load(hi_ptr + row)
        per = tl.cdiv(end - start, SPLITS)
        lo = start + s * per
        hi = tl.minimum(lo + per, end)
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
    if BALANCED:
        part = item * H + heads
        # a [H] mask built by hand: the Triton interpreter rejects a scalar one here
        ok_h = heads * 0 + live.to(tl.int32) > 0
        tl.store(part_o_ptr + part[:, None] * DC + dc[None, :], acc, mask=ok_h[:, None])
        tl.store(part_ml_ptr + part * 2, m, mask=ok_h)
        tl.store(part_ml_ptr + part * 2 + 1, l, mask=ok_h)
    else:
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


@triton.jit
def _merge_chunks(part_o_ptr, part_ml_ptr, out_ptr, lse_ptr, indptr_ptr, batch, chunk, HEADS: tl.constexpr,
                  D: tl.constexpr, BP: tl.constexpr, MB: tl.constexpr):
    """The balanced layout's merge: row b * HEADS + head combines sequence b's chunks, MB at a time."""
    row = tl.program_id(0)
    b = row // HEADS
    head = row % HEADS
    j, start, end, n, first = _chunks(indptr_ptr, batch, chunk, BP)
    lo = tl.sum(tl.where(j == b, first, 0), 0)
    hi = lo + tl.sum(tl.where(j == b, n, 0), 0)
    cols = tl.arange(0, D)
    m_max = float("-inf")
    for c0 in range(lo, hi, MB):
        it = c0 + tl.arange(0, MB)
        m_max = tl.maximum(m_max, tl.max(tl.load(part_ml_ptr + (it * HEADS + head) * 2, mask=it < hi,
                                                 other=float("-inf")), 0))
    total = 0.0
    o = tl.zeros([D], tl.float32)
    for c0 in range(lo, hi, MB):
        it = c0 + tl.arange(0, MB)
        ok = it < hi
        part = it * HEADS + head
        m = tl.load(part_ml_ptr + part * 2, mask=ok, other=float("-inf"))
        l = tl.load(part_ml_ptr + part * 2 + 1, mask=ok, other=0.0)
        w = tl.where(l > 0, tl.exp2(m - m_max), 0.0)
        total += tl.sum(l * w, 0)
        acc = tl.load(part_o_ptr + part[:, None] * D + cols[None, :], mask=ok[:, None], other=0.0)
        o += tl.sum(acc * w[:, None], 0)
    safe = tl.where(total > 0, total, 1.0)
    tl.store(out_ptr + row * D + cols, (o / safe).to(tl.bfloat16))
    tl.store(lse_ptr + row, tl.where(total > 0, m_max + tl.log2(safe), float("-inf")))


def _chunk_tokens(tokens: int) -> int:
    """The balanced layout's chunk length: about WAVES programs per SM over the batch, at least MIN_SPLIT_BLOCKS
    blocks, a whole number of blocks."""
    want = max(1, WAVES * 132)
    blocks = max(MIN_SPLIT_BLOCKS, triton.cdiv(triton.cdiv(max(tokens, 1), want), BLOCK_N))
    return blocks * BLOCK_N


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
    if BALANCED:
        return _run_balanced(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, out, lse)
    splits = _splits(batch, kv_indices.shape[0])
    part_o = torch.empty(batch * heads * splits, d_ckv, dtype=torch.float32, device=q_nope.device)
    part_ml = torch.empty(batch * heads * splits, 2, dtype=torch.float32, device=q_nope.device)
    _mla_split[(batch, splits)](
        q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr[:-1], kv_indptr[1:], kv_indices, part_o, part_ml,
        float(sm_scale) * math.log2(math.e), batch, 1, H=heads, DC=d_ckv, DP=d_kpe, BLOCK_N=BLOCK_N,
        SPLITS=splits, PV_BF16X2=PV_BF16X2, BALANCED=False, BP=1, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
    )
    _merge[(batch * heads,)](part_o, part_ml, out, lse, D=d_ckv, SPLITS=splits, num_warps=4)
    return out, lse


def _run_balanced(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, out, lse):
    batch, heads, d_ckv = q_nope.shape
    tokens = kv_indices.shape[0]
    chunk = _chunk_tokens(tokens)
    # each sequence has at most len / chunk + 1 chunks: the grid's bound needs no copy of kv_indptr to the host
    items = triton.cdiv(tokens, chunk) + batch
    part_o = torch.empty(items * heads, d_ckv, dtype=torch.float32, device=q_nope.device)
    part_ml = torch.empty(items * heads, 2, dtype=torch.float32, device=q_nope.device)
    bp = triton.next_power_of_2(batch + 1)
    _mla_split[(items, 1)](
        q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indptr, kv_indices, part_o, part_ml,
        float(sm_scale) * math.log2(math.e), batch, chunk, H=heads, DC=d_ckv, DP=q_pe.shape[2], BLOCK_N=BLOCK_N,
        SPLITS=1, PV_BF16X2=PV_BF16X2, BALANCED=True, BP=bp, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
    )
    _merge_chunks[(batch * heads,)](part_o, part_ml, out, lse, kv_indptr, batch, chunk, HEADS=heads, D=d_ckv,
                                    BP=bp, MB=8, num_warps=4)
    return out, lse
