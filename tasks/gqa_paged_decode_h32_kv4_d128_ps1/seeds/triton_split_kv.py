"""Seed for gqa_paged_decode_h32_kv4_d128_ps1: split-KV (flash-decoding) in Triton.

Grid (batch, kv head, split): each program takes the 8 query heads that share one KV head (padded to 16
rows so tl.dot can use tensor cores), walks its share of the sequence's pages BLOCK_N at a time, gathering
K and V rows through kv_indices, and keeps an online softmax in base 2 (probabilities stay fp32 for the value product: tf32 on tensor cores). A second small kernel merges the
splits' partial results into the output and the base-2 log-sum-exp. More splits put more SMs on one long
sequence; NUM_SPLITS = 0 picks a count from the batch size and the average sequence length. ALL_HEADS switches to a
second kernel whose programs take all KV heads of a sequence's split (grid (batch, split)), so each token's K and V
rows are read whole. BALANCED (with either kernel) replaces the per-sequence split count by chunks of one token length for every
sequence (a long sequence gets more programs than a short one), mapped to programs on the GPU from kv_indptr.
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
NUM_WARPS = 4
NUM_STAGES = 2
# the value product as two bf16 MMAs (P = hi + lo, both bf16) instead of one tf32 MMA on an fp32 copy of the values:
# about 16 bits of P instead of tf32's 11, and the values stay bf16 in registers
PV_BF16X2 = False
# one program per (sequence, split) takes all KV heads at once: each token's K (and V) row for the 4 KV heads is one
# contiguous 1 KB read instead of four 256-byte reads by four programs; the scores are a batched [KVH, 16, D] x
# [KVH, D, BLOCK_N] product (grid 4x smaller, so the automatic split count aims at 4x more splits)
ALL_HEADS = False
# every sequence is cut into chunks of the same token length, sized so that the chunks of the whole batch give about
# WAVES programs per SM; program i finds its (sequence, chunk) from kv_indptr on the GPU. With random sequence lengths
# a per-sequence split count leaves the longest sequence's programs running alone at the end.
BALANCED = False


@triton.jit
def _split_range(indptr_ptr, b, s, SPLITS: tl.constexpr):
    """Tokens [lo, hi) of sequence b that split s covers."""
    start = tl.load(indptr_ptr + b)
    end = tl.load(indptr_ptr + b + 1)
    chunk = tl.cdiv(end - start, SPLITS)
    lo = start + s * chunk
    return lo, tl.minimum(lo + chunk, end)


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
def _decode_split(q_ptr, k_ptr, v_ptr, indptr_ptr, indices_ptr, part_o_ptr, part_ml_ptr, qk_scale, batch, chunk,
                  KVH: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr, BLOCK_H: tl.constexpr,
                  BLOCK_N: tl.constexpr, SPLITS: tl.constexpr, PV_BF16X2: tl.constexpr, BALANCED: tl.constexpr,
                  BP: tl.constexpr):
    h = tl.program_id(1)
    if BALANCED:
        item = tl.program_id(0)
        b, lo, hi = _work_item(indptr_ptr, item, batch, chunk, BP)
        live = b < batch  # the grid's bound exceeds the chunk count: the spare programs read a valid row, store nothing
        b = tl.minimum(b, batch - 1)
    else:
        b = tl.program_id(0)
        s = tl.program_id(2)
        lo, hi = _split_range(indptr_ptr, b, s, SPLITS)
    rows = tl.arange(0, BLOCK_H)
    cols = tl.arange(0, D)
    row_ok = rows < GROUP
    head = h * GROUP + rows
    q = tl.load(q_ptr + (b * KVH * GROUP + head)[:, None] * D + cols[None, :], mask=row_ok[:, None], other=0.0)
    m = tl.full([BLOCK_H], float("-inf"), tl.float32)
    l = tl.zeros([BLOCK_H], tl.float32)
    acc = tl.zeros([BLOCK_H, D], tl.float32)
    for n0 in range(lo, hi, BLOCK_N):
        offs = n0 + tl.arange(0, BLOCK_N)
        ok = offs < hi
        page = tl.load(indices_ptr + offs, mask=ok, other=0).to(tl.int64)
        kv = (page * KVH + h)[:, None] * D + cols[None, :]
        k = tl.load(k_ptr + kv, mask=ok[:, None], other=0.0)
        scores = tl.dot(q, tl.trans(k)) * qk_scale
        scores = tl.where(ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, 1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(scores - m_new[:, None])
        l = l * alpha + tl.sum(p, 1)
        v = tl.load(v_ptr + kv, mask=ok[:, None], other=0.0)
        if PV_BF16X2:
            p_hi = p.to(tl.bfloat16)
            p_lo = (p - p_hi.to(tl.float32)).to(tl.bfloat16)
            acc = acc * alpha[:, None] + tl.dot(p_hi, v) + tl.dot(p_lo, v)
        else:
            acc = acc * alpha[:, None] + tl.dot(p, v.to(tl.float32))
        m = m_new
    if BALANCED:
        part = item * KVH * GROUP + head
        # broadcast by hand: the Triton interpreter rejects a vector mask and'ed with a scalar one
        row_ok = row_ok & (rows * 0 + live.to(tl.int32) > 0)
    else:
        part = (b * KVH * GROUP + head) * SPLITS + s
    tl.store(part_o_ptr + part[:, None] * D + cols[None, :], acc, mask=row_ok[:, None])
    tl.store(part_ml_ptr + part * 2, m, mask=row_ok)
    tl.store(part_ml_ptr + part * 2 + 1, l, mask=row_ok)


@triton.jit
def _decode_split_all_heads(q_ptr, k_ptr, v_ptr, indptr_ptr, indices_ptr, part_o_ptr, part_ml_ptr, qk_scale,
                            batch, chunk, KVH: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr,
                            BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, SPLITS: tl.constexpr,
                            BALANCED: tl.constexpr, BP: tl.constexpr):
    if BALANCED:
        item = tl.program_id(0)
        b, lo, hi = _work_item(indptr_ptr, item, batch, chunk, BP)
        live = b < batch  # as in _decode_split: spare programs read a valid row and store nothing
        b = tl.minimum(b, batch - 1)
    else:
        b = tl.program_id(0)
        s = tl.program_id(1)
        lo, hi = _split_range(indptr_ptr, b, s, SPLITS)
    kvh = tl.arange(0, KVH)
    rows = tl.arange(0, BLOCK_H)
    cols = tl.arange(0, D)
    row_ok = (rows < GROUP)[None, :]
    head = kvh[:, None] * GROUP + rows[None, :]
    q = tl.load(q_ptr + (b * KVH * GROUP + head)[:, :, None] * D + cols[None, None, :], mask=row_ok[:, :, None],
                other=0.0)
    m = tl.full([KVH, BLOCK_H], float("-inf"), tl.float32)
    l = tl.zeros([KVH, BLOCK_H], tl.float32)
    acc = tl.zeros([KVH, BLOCK_H, D], tl.float32)
    for n0 in range(lo, hi, BLOCK_N):
        offs = n0 + tl.arange(0, BLOCK_N)
        ok = offs < hi
        page = tl.load(indices_ptr + offs, mask=ok, other=0).to(tl.int64)
        kv = (page[None, :, None] * KVH + kvh[:, None, None]) * D + cols[None, None, :]
        k = tl.load(k_ptr + kv, mask=ok[None, :, None], other=0.0)
        scores = tl.dot(q, tl.permute(k, (0, 2, 1))) * qk_scale
        scores = tl.where(ok[None, None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, 2))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(scores - m_new[:, :, None])
        l = l * alpha + tl.sum(p, 2)
        v = tl.load(v_ptr + kv, mask=ok[None, :, None], other=0.0)
        acc = acc * alpha[:, :, None] + tl.dot(p, v.to(tl.float32))
        m = m_new
    if BALANCED:
        part = item * KVH * GROUP + head
        row_ok = row_ok & (head * 0 + live.to(tl.int32) > 0)
    else:
        part = (b * KVH * GROUP + head) * SPLITS + s
    tl.store(part_o_ptr + part[:, :, None] * D + cols[None, None, :], acc, mask=row_ok[:, :, None])
    tl.store(part_ml_ptr + part * 2, m, mask=row_ok)
    tl.store(part_ml_ptr + part * 2 + 1, l, mask=row_ok)


@triton.jit
def _merge(part_o_ptr, part_ml_ptr, out_ptr, lse_ptr, D: tl.constexpr, SPLITS: tl.constexpr):
    row = tl.program_id(0)  # b * heads + head
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


def _chunk_tokens(programs_per_chunk: int, tokens: int) -> int:
    """The balanced layout's chunk length: about WAVES programs per SM over the batch (a chunk takes one program per
    KV head, or one for all of them), at least MIN_SPLIT_BLOCKS blocks, a whole number of blocks."""
    want = max(1, WAVES * 132 // programs_per_chunk)
    blocks = max(MIN_SPLIT_BLOCKS, triton.cdiv(triton.cdiv(max(tokens, 1), want), BLOCK_N))
    return blocks * BLOCK_N


def _splits(batch: int, kv_heads: int, tokens: int) -> int:
    if NUM_SPLITS:
        return NUM_SPLITS
    programs = max(batch * (1 if ALL_HEADS else kv_heads), 1)
    want = max(1, WAVES * 132 // programs)
    per_seq = max(1, tokens // max(batch, 1) // (MIN_SPLIT_BLOCKS * BLOCK_N))
    return min(MAX_SPLITS, triton.next_power_of_2(min(want, per_seq)))


def run(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, dim = q.shape
    kv_heads = k_cache.shape[2]
    group = heads // kv_heads
    tokens = kv_indices.shape[0]
    if BALANCED:
        return _run_balanced(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale)
    splits = _splits(batch, kv_heads, tokens)
    part_o = torch.empty(batch * heads * splits, dim, dtype=torch.float32, device=q.device)
    part_ml = torch.empty(batch * heads * splits, 2, dtype=torch.float32, device=q.device)
    out = torch.empty(batch, heads, dim, dtype=torch.bfloat16, device=q.device)
    lse = torch.empty(batch, heads, dtype=torch.float32, device=q.device)
    if batch == 0:
        return out, lse
    qk_scale = float(sm_scale) * math.log2(math.e)
    block_h = max(16, triton.next_power_of_2(group))
    if ALL_HEADS:
        _decode_split_all_heads[(batch, splits)](
            q, k_cache, v_cache, kv_indptr, kv_indices, part_o, part_ml, qk_scale, batch, 1, KVH=kv_heads,
            GROUP=group, D=dim, BLOCK_H=block_h, BLOCK_N=BLOCK_N, SPLITS=splits, BALANCED=False, BP=1,
            num_warps=NUM_WARPS, num_stages=NUM_STAGES,
        )
    else:
        _decode_split[(batch, kv_heads, splits)](
            q, k_cache, v_cache, kv_indptr, kv_indices, part_o, part_ml, qk_scale, batch, 1, KVH=kv_heads,
            GROUP=group, D=dim, BLOCK_H=block_h, BLOCK_N=BLOCK_N, SPLITS=splits, PV_BF16X2=PV_BF16X2,
            BALANCED=False, BP=1, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
        )
    _merge[(batch * heads,)](part_o, part_ml, out, lse, D=dim, SPLITS=splits, num_warps=4)
    return out, lse


def _run_balanced(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, dim = q.shape
    kv_heads = k_cache.shape[2]
    group = heads // kv_heads
    tokens = kv_indices.shape[0]
    chunk = _chunk_tokens(1 if ALL_HEADS else kv_heads, tokens)
    # each sequence has at most len / chunk + 1 chunks: the grid's bound needs no copy of kv_indptr to the host
    items = triton.cdiv(tokens, chunk) + batch
    part_o = torch.empty(items * heads, dim, dtype=torch.float32, device=q.device)
    part_ml = torch.empty(items * heads, 2, dtype=torch.float32, device=q.device)
    out = torch.empty(batch, heads, dim, dtype=torch.bfloat16, device=q.device)
    lse = torch.empty(batch, heads, dtype=torch.float32, device=q.device)
    if batch == 0:
        return out, lse
    bp = triton.next_power_of_2(batch + 1)
    qk_scale = float(sm_scale) * math.log2(math.e)
    block_h = max(16, triton.next_power_of_2(group))
    if ALL_HEADS:
        _decode_split_all_heads[(items, 1)](
            q, k_cache, v_cache, kv_indptr, kv_indices, part_o, part_ml, qk_scale, batch, chunk, KVH=kv_heads,
            GROUP=group, D=dim, BLOCK_H=block_h, BLOCK_N=BLOCK_N, SPLITS=1, BALANCED=True, BP=bp,
            num_warps=NUM_WARPS, num_stages=NUM_STAGES,
        )
    else:
        _decode_split[(items, kv_heads, 1)](
            q, k_cache, v_cache, kv_indptr, kv_indices, part_o, part_ml, qk_scale, batch, chunk, KVH=kv_heads,
            GROUP=group, D=dim, BLOCK_H=block_h, BLOCK_N=BLOCK_N, SPLITS=1, PV_BF16X2=PV_BF16X2, BALANCED=True,
            BP=bp, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
        )
    _merge_chunks[(batch * heads,)](part_o, part_ml, out, lse, kv_indptr, batch, chunk, HEADS=heads, D=dim, BP=bp,
                                    MB=16, num_warps=4)
    return out, lse
