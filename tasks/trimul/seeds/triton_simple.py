"""Simple Triton seed for the GPUMode TriMul operator (AlphaFold3 outgoing triangle update).

Semantics (see ``tasks/trimul/reference.py``), with ``H = hidden = 128``::

    xn    = LayerNorm_dim(x)                                   # eps 1e-5
    left  = (xn @ Wlp^T) * mask * sigmoid(xn @ Wlg^T)          # [bs, N, N, H]
    right = (xn @ Wrp^T) * mask * sigmoid(xn @ Wrg^T)          # [bs, N, N, H]
    p[b, i, j, d] = sum_k left[b, i, k, d] * right[b, j, k, d]
    out   = (LayerNorm_H(p) * sigmoid(xn @ Wog^T)) @ Wto^T      # [bs, N, N, dim] fp32

The work is split into three Triton kernels; PyTorch only allocates buffers and
prepares the (small) weight matrices.

1. ``_ln_proj_gate_kernel`` -- grid (row blocks, hidden blocks, bs).  Each program
   takes BLOCK_M rows of x (one row = one (b, i, k) pair, ``dim`` channels), computes
   the LayerNorm statistics in two passes over ``dim`` (mean, then centred variance:
   robust to the heavy-tailed Cauchy inputs), then streams x again, normalises it to
   fp16 and runs five fp16 GEMMs with fp32 accumulation against a BLOCK_H-wide slice
   of each of the five projection matrices (packed once into a [dim, 5*H] fp16
   matrix).  The epilogue applies the mask and the sigmoid gates and writes

   * ``left`` and ``right`` in fp16 with layout [bs, H, N(i), N(k)], i.e. one
     row-major N x N matrix per (batch, hidden channel), so that the triangle
     contraction in kernel 2 is a plain batched ``L @ R^T`` with no transpose;
   * ``sigmoid(out_gate)`` in fp16 with layout [bs*N*N, H] for kernel 3.

2. ``_tri_bmm_kernel`` -- grid (i tiles, j tiles, bs*H).  Batched GEMM
   ``p[z] = left[z] @ right[z]^T`` for every z = (b, d), fp16 operands, fp32
   accumulation, result stored in fp32 (values can grow with N, fp32 avoids any fp16
   overflow risk) with the same [bs, H, N, N] layout.

3. ``_out_ln_gate_proj_kernel`` -- grid (row blocks, bs).  Each program loads
   BLOCK_M rows (b, i, j) x all H channels of p (coalesced along the rows because
   of the [bs, H, N, N] layout), applies the hidden LayerNorm, multiplies by the out
   gate, casts to fp16 and multiplies by ``to_out^T`` ([H, dim] fp16) in BLOCK_N
   column chunks, writing the fp32 output [bs, N, N, dim].

Rows are indexed per batch (program axis ``bs``) so the layouts stay contiguous and
every tail (rows, ``dim`` chunks, N tiles) is handled by load/store masks.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

LN_EPS = 1e-5

# Kernel 1: LayerNorm + 5 projections + gates.
K1_BLOCK_M = 64
K1_BLOCK_H = 64
K1_BLOCK_K = 64
K1_NUM_WARPS = 8
K1_NUM_STAGES = 2

# Kernel 2: batched triangle GEMM.
K2_BLOCK_M = 128
K2_BLOCK_N = 128
K2_BLOCK_K = 64
K2_NUM_WARPS = 8
K2_NUM_STAGES = 3

# Kernel 3: hidden LayerNorm + out gate + output projection.
K3_BLOCK_M = 64
K3_BLOCK_N = 128
K3_NUM_WARPS = 8
K3_NUM_STAGES = 2


@triton.jit
def _ln_proj_gate_kernel(
    x_ptr,  # fp32 [bs, N2, D]
    mask_ptr,  # fp32 [bs, N2]
    ln_w_ptr,  # fp32 [D]
    ln_b_ptr,  # fp32 [D]
    w_ptr,  # fp16 [D, 5*H]: columns = [left_proj | left_gate | right_proj | right_gate | out_gate]
    left_ptr,  # fp16 [bs, H, N2]
    right_ptr,  # fp16 [bs, H, N2]
    og_ptr,  # fp16 [bs, N2, H]
    N2,  # N * N
    D,  # dim
    H: tl.constexpr,
    EPS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_h = tl.program_id(1)
    b = tl.program_id(2)

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # row index inside batch b
    row_ok = rows < N2
    x_rows = x_ptr + (b * N2 + rows).to(tl.int64)[:, None] * D
    kk = tl.arange(0, BLOCK_K)

    # LayerNorm statistics, pass 1: mean.
    s = tl.zeros([BLOCK_M], dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        cols = k0 + kk
        xt = tl.load(x_rows + cols[None, :], mask=row_ok[:, None] & (cols < D)[None, :], other=0.0)
        s += tl.sum(xt, axis=1)
    mean = s / D
    # Pass 2: centred variance (stable for heavy-tailed inputs).
    s2 = tl.zeros([BLOCK_M], dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        cols = k0 + kk
        ok = row_ok[:, None] & (cols < D)[None, :]
        xt = tl.load(x_rows + cols[None, :], mask=ok, other=0.0)
        xc = tl.where(ok, xt - mean[:, None], 0.0)
        s2 += tl.sum(xc * xc, axis=1)
    rstd = 1.0 / tl.sqrt(s2 / D + EPS)

    # Pass 3: normalise on the fly and run the five projections for this hidden slice.
    hcols = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    acc_lp = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_lg = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_rp = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_rg = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_og = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        cols = k0 + kk
        col_ok = cols < D
        xt = tl.load(x_rows + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        lw = tl.load(ln_w_ptr + cols, mask=col_ok, other=0.0)
        lb = tl.load(ln_b_ptr + cols, mask=col_ok, other=0.0)
        # Padded columns get lw = lb = 0, hence xn = 0 there.
        xn = ((xt - mean[:, None]) * rstd[:, None] * lw[None, :] + lb[None, :]).to(tl.float16)

        w_tile = w_ptr + cols[:, None] * (5 * H) + hcols[None, :]
        w_ok = col_ok[:, None]
        acc_lp = tl.dot(xn, tl.load(w_tile, mask=w_ok, other=0.0), acc_lp)
        acc_lg = tl.dot(xn, tl.load(w_tile + H, mask=w_ok, other=0.0), acc_lg)
        acc_rp = tl.dot(xn, tl.load(w_tile + 2 * H, mask=w_ok, other=0.0), acc_rp)
        acc_rg = tl.dot(xn, tl.load(w_tile + 3 * H, mask=w_ok, other=0.0), acc_rg)
        acc_og = tl.dot(xn, tl.load(w_tile + 4 * H, mask=w_ok, other=0.0), acc_og)

    mval = tl.load(mask_ptr + b * N2 + rows, mask=row_ok, other=0.0)
    left = acc_lp * tl.sigmoid(acc_lg) * mval[:, None]
    right = acc_rp * tl.sigmoid(acc_rg) * mval[:, None]
    og = tl.sigmoid(acc_og)

    # left/right: [bs, H, N2] so each (b, d) is a row-major N x N matrix.
    lr_off = (b * H + hcols).to(tl.int64)[None, :] * N2 + rows[:, None]
    st_ok = row_ok[:, None]
    tl.store(left_ptr + lr_off, left.to(tl.float16), mask=st_ok)
    tl.store(right_ptr + lr_off, right.to(tl.float16), mask=st_ok)
    og_off = (b * N2 + rows).to(tl.int64)[:, None] * H + hcols[None, :]
    tl.store(og_ptr + og_off, og.to(tl.float16), mask=st_ok)


@triton.jit
def _tri_bmm_kernel(
    left_ptr,  # fp16 [Z, N, N]  (Z = bs * H), left[z, i, k]
    right_ptr,  # fp16 [Z, N, N], right[z, j, k]
    p_ptr,  # fp32 [Z, N, N], p[z, i, j] = sum_k left[z, i, k] * right[z, j, k]
    N,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_i = tl.program_id(0)
    pid_j = tl.program_id(1)
    z = tl.program_id(2)
    base = z.to(tl.int64) * N * N

    ii = pid_i * BLOCK_M + tl.arange(0, BLOCK_M)
    jj = pid_j * BLOCK_N + tl.arange(0, BLOCK_N)
    kk = tl.arange(0, BLOCK_K)
    a_ptrs = left_ptr + base + ii[:, None] * N + kk[None, :]  # [BM, BK]
    b_ptrs = right_ptr + base + jj[None, :] * N + kk[:, None]  # [BK, BN] (right^T)
    i_ok = ii < N
    j_ok = jj < N

    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, N, BLOCK_K):
        k_ok = (k0 + kk) < N
        a = tl.load(a_ptrs, mask=i_ok[:, None] & k_ok[None, :], other=0.0)
        bt = tl.load(b_ptrs, mask=k_ok[:, None] & j_ok[None, :], other=0.0)
        acc = tl.dot(a, bt, acc)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K

    p_ptrs = p_ptr + base + ii[:, None] * N + jj[None, :]
    tl.store(p_ptrs, acc, mask=i_ok[:, None] & j_ok[None, :])


@triton.jit
def _out_ln_gate_proj_kernel(
    p_ptr,  # fp32 [bs, H, N2]
    og_ptr,  # fp16 [bs, N2, H]
    ln_w_ptr,  # fp32 [H]
    ln_b_ptr,  # fp32 [H]
    wo_ptr,  # fp16 [H, D] (= to_out^T)
    out_ptr,  # fp32 [bs, N2, D]
    N2,
    D,
    H: tl.constexpr,
    EPS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    b = tl.program_id(1)

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < N2
    hh = tl.arange(0, H)

    p = tl.load(
        p_ptr + (b * H + hh).to(tl.int64)[None, :] * N2 + rows[:, None],
        mask=row_ok[:, None],
        other=0.0,
    )
    mean = tl.sum(p, axis=1) / H
    pc = p - mean[:, None]
    var = tl.sum(pc * pc, axis=1) / H
    rstd = 1.0 / tl.sqrt(var + EPS)
    lw = tl.load(ln_w_ptr + hh)
    lb = tl.load(ln_b_ptr + hh)
    g_rows = (b * N2 + rows).to(tl.int64)
    g = tl.load(og_ptr + g_rows[:, None] * H + hh[None, :], mask=row_ok[:, None], other=0.0)
    a = ((pc * rstd[:, None] * lw[None, :] + lb[None, :]) * g.to(tl.float32)).to(tl.float16)

    out_rows = out_ptr + g_rows[:, None] * D
    for n0 in range(0, D, BLOCK_N):
        nn = n0 + tl.arange(0, BLOCK_N)
        n_ok = nn < D
        wt = tl.load(wo_ptr + hh[:, None] * D + nn[None, :], mask=n_ok[None, :], other=0.0)
        acc = tl.dot(a, wt)
        tl.store(out_rows + nn[None, :], acc, mask=row_ok[:, None] & n_ok[None, :])


def run(
    x: torch.Tensor,
    mask: torch.Tensor,
    norm_weight: torch.Tensor,
    norm_bias: torch.Tensor,
    left_proj: torch.Tensor,
    right_proj: torch.Tensor,
    left_gate: torch.Tensor,
    right_gate: torch.Tensor,
    out_gate: torch.Tensor,
    to_out_norm_weight: torch.Tensor,
    to_out_norm_bias: torch.Tensor,
    to_out: torch.Tensor,
) -> torch.Tensor:
    """TriMul forward: x [bs, N, N, dim] fp32, mask [bs, N, N] -> out [bs, N, N, dim] fp32."""
    bs, n, n2_check, dim = x.shape
    assert n == n2_check, "x must be [bs, N, N, dim]"
    hidden = left_proj.shape[0]
    assert hidden & (hidden - 1) == 0 and hidden % K1_BLOCK_H == 0, "hidden must be a power of 2 >= 64"
    dev = x.device
    n2 = n * n

    x = x.contiguous()
    if x.dtype != torch.float32:
        x = x.float()
    if mask.dtype != torch.float32:
        mask = mask.to(torch.float32)
    mask = mask.contiguous()

    # Small weight preparation (<= 768 x 640 elements).
    w_cat = (
        torch.cat([left_proj, left_gate, right_proj, right_gate, out_gate], dim=0)
        .t()
        .contiguous()
        .to(torch.float16)
    )  # [dim, 5*hidden]
    wo_t = to_out.t().contiguous().to(torch.float16)  # [hidden, dim]
    ln_w = norm_weight.contiguous().float()
    ln_b = norm_bias.contiguous().float()
    oln_w = to_out_norm_weight.contiguous().float()
    oln_b = to_out_norm_bias.contiguous().float()

    left = torch.empty((bs, hidden, n, n), device=dev, dtype=torch.float16)
    right = torch.empty((bs, hidden, n, n), device=dev, dtype=torch.float16)
    og = torch.empty((bs, n2, hidden), device=dev, dtype=torch.float16)
    p = torch.empty((bs, hidden, n, n), device=dev, dtype=torch.float32)
    out = torch.empty((bs, n, n, dim), device=dev, dtype=torch.float32)

    grid1 = (triton.cdiv(n2, K1_BLOCK_M), hidden // K1_BLOCK_H, bs)
    _ln_proj_gate_kernel[grid1](
        x, mask, ln_w, ln_b, w_cat, left, right, og, n2, dim,
        H=hidden, EPS=LN_EPS,
        BLOCK_M=K1_BLOCK_M, BLOCK_H=K1_BLOCK_H, BLOCK_K=K1_BLOCK_K,
        num_warps=K1_NUM_WARPS, num_stages=K1_NUM_STAGES,
    )

    grid2 = (triton.cdiv(n, K2_BLOCK_M), triton.cdiv(n, K2_BLOCK_N), bs * hidden)
    _tri_bmm_kernel[grid2](
        left, right, p, n,
        BLOCK_M=K2_BLOCK_M, BLOCK_N=K2_BLOCK_N, BLOCK_K=K2_BLOCK_K,
        num_warps=K2_NUM_WARPS, num_stages=K2_NUM_STAGES,
    )

    grid3 = (triton.cdiv(n2, K3_BLOCK_M), bs)
    _out_ln_gate_proj_kernel[grid3](
        p, og, oln_w, oln_b, wo_t, out, n2, dim,
        H=hidden, EPS=LN_EPS,
        BLOCK_M=K3_BLOCK_M, BLOCK_N=K3_BLOCK_N,
        num_warps=K3_NUM_WARPS, num_stages=K3_NUM_STAGES,
    )
    return out


def custom_kernel(data: tuple) -> torch.Tensor:
    """GPUMode entry point: data = (x, mask, weights, config)."""
    x, mask, weights, _config = data
    return run(
        x,
        mask,
        weights["norm.weight"],
        weights["norm.bias"],
        weights["left_proj.weight"],
        weights["right_proj.weight"],
        weights["left_gate.weight"],
        weights["right_gate.weight"],
        weights["out_gate.weight"],
        weights["to_out_norm.weight"],
        weights["to_out_norm.bias"],
        weights["to_out.weight"],
    )
