"""Triton TriMul with the input LayerNorm folded into the projection GEMM (one pass over x).

Kernel 0 folds the LayerNorm affine into the weights in one small launch: from the five projection/gate
weights it writes the stacked, transposed (g.W)^T with the per-column sums colsum(g.W) and b W^T that
kernel 1's epilogue needs, so the call computes nothing with PyTorch (it only allocates and converts).
Kernel 1 runs the five projections on raw x with tf32 tensor cores while the same loop accumulates sum(x) and
sum(x^2); the LayerNorm is applied afterwards through LN(x) W^T = rstd (x (g.W)^T - mean colsum(g.W)) + b W^T,
then mask and sigmoid gates, writing hidden-major fp16 left/right and the out gate. Kernels 2 and 3 are the
seed's batched triangle GEMM (here storing p in fp16) and its LayerNorm + gate + output projection.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

LN_EPS = 1e-5

# Kernel 0: LayerNorm affine folded into the 5 stacked weights (w_fold, c1, c2), one launch.
FOLD_BLOCK_R = 32
FOLD_BLOCK_D = 128
FOLD_NUM_WARPS = 4

# Kernel 1: LayerNorm folded into the 5 projections + gates, one pass over x.
K1_BLOCK_M = 64
K1_BLOCK_H = 64
K1_BLOCK_K = 32
K1_NUM_WARPS = 8
K1_NUM_STAGES = 3
K1_PRECISION = "tf32"

# The triangle product p: fp16 halves its write and read (values stay far below fp16's range).
P_DTYPE = "float16"

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
def _fold_weights_kernel(
    lp_ptr,  # fp32 [H, D] left_proj
    lg_ptr,  # fp32 [H, D] left_gate
    rp_ptr,  # fp32 [H, D] right_proj
    rg_ptr,  # fp32 [H, D] right_gate
    og_ptr,  # fp32 [H, D] out_gate
    ln_w_ptr,  # fp32 [D] norm_weight g
    ln_b_ptr,  # fp32 [D] norm_bias b
    w_ptr,  # fp32 [D, 5*H] out: (g.W)^T, columns [left_proj | left_gate | right_proj | right_gate | out_gate]
    c1_ptr,  # fp32 [5*H] out: sum_k g_k W_jk
    c2_ptr,  # fp32 [5*H] out: sum_k b_k W_jk
    D,
    H: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """The LayerNorm affine folded into the stacked weights: a program per (weight, block of BLOCK_R rows).

    Program (s, r) reads rows r of weight s (s picks the source with scalar branches), scales them by g,
    stores them transposed into columns s*H + r of w (BLOCK_R consecutive floats per k) and accumulates
    their sums and b-weighted sums over k into c1 and c2.
    """
    seg = tl.program_id(0)
    if seg == 0:
        src = lp_ptr
    elif seg == 1:
        src = lg_ptr
    elif seg == 2:
        src = rp_ptr
    elif seg == 3:
        src = rg_ptr
    else:
        src = og_ptr
    r = tl.program_id(1) * BLOCK_R + tl.arange(0, BLOCK_R)
    r_ok = r < H
    j = seg * H + r  # column of w, entry of c1 and c2
    kk = tl.arange(0, BLOCK_D)

    c1 = tl.zeros([BLOCK_R], dtype=tl.float32)
    c2 = tl.zeros([BLOCK_R], dtype=tl.float32)
    for k0 in range(0, D, BLOCK_D):
        k = k0 + kk
        k_ok = k < D
        ok = r_ok[:, None] & k_ok[None, :]
        w = tl.load(src + r[:, None] * D + k[None, :], mask=ok, other=0.0)
        g = tl.load(ln_w_ptr + k, mask=k_ok, other=0.0)
        bias = tl.load(ln_b_ptr + k, mask=k_ok, other=0.0)
        wg = w * g[None, :]
        tl.store(w_ptr + k[None, :] * (5 * H) + j[:, None], wg, mask=ok)
        c1 += tl.sum(wg, axis=1)
        c2 += tl.sum(w * bias[None, :], axis=1)
    tl.store(c1_ptr + j, c1, mask=r_ok)
    tl.store(c2_ptr + j, c2, mask=r_ok)


@triton.jit
def _fold_proj_gate_kernel(
    x_ptr,  # fp32 [bs, N2, D], raw (not normalised)
    mask_ptr,  # fp32 [bs, N2]
    w_ptr,  # fp32 [D, 5*H]: (norm_weight * W)^T, columns [left_proj | left_gate | right_proj | right_gate | out_gate]
    c1_ptr,  # fp32 [5*H]: column sums of w (sum_k g_k W_jk)
    c2_ptr,  # fp32 [5*H]: sum_k b_k W_jk
    left_ptr,  # fp16 [bs, H, N2]
    right_ptr,  # fp16 [bs, H, N2]
    og_ptr,  # fp16 [bs, N2, H]
    N2,
    D,
    H: tl.constexpr,
    EPS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """LayerNorm folded into the projection GEMM: one pass over raw x.

    LN(x) W^T = rstd * (x (g.W)^T - mean * colsum(g.W)) + b W^T, so the GEMM runs on raw x while the same
    loop accumulates sum(x) and sum(x^2) for mean and rstd.
    """
    pid_m = tl.program_id(0)
    pid_h = tl.program_id(1)
    b = tl.program_id(2)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < N2
    x_rows = x_ptr + (b * N2 + rows).to(tl.int64)[:, None] * D
    kk = tl.arange(0, BLOCK_K)
    hcols = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)

    s1 = tl.zeros([BLOCK_M], dtype=tl.float32)
    s2 = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc_lp = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_lg = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_rp = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_rg = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc_og = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        cols = k0 + kk
        col_ok = cols < D
        xt = tl.load(x_rows + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        s1 += tl.sum(xt, axis=1)
        s2 += tl.sum(xt * xt, axis=1)
        w_tile = w_ptr + cols[:, None] * (5 * H) + hcols[None, :]
        w_ok = col_ok[:, None]
        acc_lp = tl.dot(xt, tl.load(w_tile, mask=w_ok, other=0.0), acc_lp, input_precision=PRECISION)
        acc_lg = tl.dot(xt, tl.load(w_tile + H, mask=w_ok, other=0.0), acc_lg, input_precision=PRECISION)
        acc_rp = tl.dot(xt, tl.load(w_tile + 2 * H, mask=w_ok, other=0.0), acc_rp, input_precision=PRECISION)
        acc_rg = tl.dot(xt, tl.load(w_tile + 3 * H, mask=w_ok, other=0.0), acc_rg, input_precision=PRECISION)
        acc_og = tl.dot(xt, tl.load(w_tile + 4 * H, mask=w_ok, other=0.0), acc_og, input_precision=PRECISION)

    mean = s1 / D
    rstd = 1.0 / tl.sqrt(tl.maximum(s2 / D - mean * mean, 0.0) + EPS)
    m_ = mean[:, None]
    r_ = rstd[:, None]
    lp = r_ * (acc_lp - m_ * tl.load(c1_ptr + hcols)[None, :]) + tl.load(c2_ptr + hcols)[None, :]
    lg = r_ * (acc_lg - m_ * tl.load(c1_ptr + H + hcols)[None, :]) + tl.load(c2_ptr + H + hcols)[None, :]
    rp = r_ * (acc_rp - m_ * tl.load(c1_ptr + 2 * H + hcols)[None, :]) + tl.load(c2_ptr + 2 * H + hcols)[None, :]
    rg = r_ * (acc_rg - m_ * tl.load(c1_ptr + 3 * H + hcols)[None, :]) + tl.load(c2_ptr + 3 * H + hcols)[None, :]
    og = r_ * (acc_og - m_ * tl.load(c1_ptr + 4 * H + hcols)[None, :]) + tl.load(c2_ptr + 4 * H + hcols)[None, :]

    mval = tl.load(mask_ptr + b * N2 + rows, mask=row_ok, other=0.0)
    left = lp * tl.sigmoid(lg) * mval[:, None]
    right = rp * tl.sigmoid(rg) * mval[:, None]
    lr_off = (b * H + hcols).to(tl.int64)[None, :] * N2 + rows[:, None]
    st_ok = row_ok[:, None]
    tl.store(left_ptr + lr_off, left.to(tl.float16), mask=st_ok)
    tl.store(right_ptr + lr_off, right.to(tl.float16), mask=st_ok)
    og_off = (b * N2 + rows).to(tl.int64)[:, None] * H + hcols[None, :]
    tl.store(og_ptr + og_off, tl.sigmoid(og).to(tl.float16), mask=st_ok)


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
    tl.store(p_ptrs, acc.to(p_ptr.dtype.element_ty), mask=i_ok[:, None] & j_ok[None, :])


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
    ).to(tl.float32)
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

    # Small weight preparation (<= 768 x 640 elements): kernel 0 folds the LayerNorm affine into the weights.
    w_srcs = [w.contiguous().float() for w in (left_proj, left_gate, right_proj, right_gate, out_gate)]
    ln_w = norm_weight.contiguous().float()
    ln_b = norm_bias.contiguous().float()
    w_fold = torch.empty((dim, 5 * hidden), device=dev, dtype=torch.float32)  # (g.W)^T
    c1 = torch.empty((5 * hidden,), device=dev, dtype=torch.float32)
    c2 = torch.empty((5 * hidden,), device=dev, dtype=torch.float32)
    wo_t = to_out.t().contiguous().to(torch.float16)  # [hidden, dim]
    oln_w = to_out_norm_weight.contiguous().float()
    oln_b = to_out_norm_bias.contiguous().float()

    left = torch.empty((bs, hidden, n, n), device=dev, dtype=torch.float16)
    right = torch.empty((bs, hidden, n, n), device=dev, dtype=torch.float16)
    og = torch.empty((bs, n2, hidden), device=dev, dtype=torch.float16)
    p = torch.empty((bs, hidden, n, n), device=dev, dtype=getattr(torch, P_DTYPE))
    out = torch.empty((bs, n, n, dim), device=dev, dtype=torch.float32)

    grid0 = (5, triton.cdiv(hidden, FOLD_BLOCK_R))
    _fold_weights_kernel[grid0](
        *w_srcs, ln_w, ln_b, w_fold, c1, c2, dim,
        H=hidden, BLOCK_R=FOLD_BLOCK_R, BLOCK_D=FOLD_BLOCK_D,
        num_warps=FOLD_NUM_WARPS,
    )

    grid1 = (triton.cdiv(n2, K1_BLOCK_M), hidden // K1_BLOCK_H, bs)
    _fold_proj_gate_kernel[grid1](
        x, mask, w_fold, c1, c2, left, right, og, n2, dim,
        H=hidden, EPS=LN_EPS,
        BLOCK_M=K1_BLOCK_M, BLOCK_H=K1_BLOCK_H, BLOCK_K=K1_BLOCK_K, PRECISION=K1_PRECISION,
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
