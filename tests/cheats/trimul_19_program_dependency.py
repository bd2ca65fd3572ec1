"""expect: INCORRECT_NUMERICAL — A three-kernel TriMul whose first kernel's program 0 packs the five projection weights into a scratch buffer that every other program then reads: right when programs run in order (the plain interpreter), a race on a GPU."""

import torch
import triton
import triton.language as tl

LN_EPS = 1e-5


@triton.jit
def _project(
    x_ptr,
    mask_ptr,
    lnw_ptr,
    lnb_ptr,
    lp_ptr,
    lg_ptr,
    rp_ptr,
    rg_ptr,
    og_ptr,
    packed_ptr,
    left_ptr,
    right_ptr,
    gate_ptr,
    NN,
    D: tl.constexpr,
    H: tl.constexpr,
    BM: tl.constexpr,
    EPS: tl.constexpr,
):
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    ck = tl.arange(0, 128)
    hh = tl.arange(0, H)
    if tl.program_id(0) == 0:  # pack W^T once: [5, D, H], so every tile below is one contiguous load
        for c0 in range(0, D, 128):
            src = hh[None, :] * D + (c0 + ck)[:, None]
            dst = (c0 + ck)[:, None] * H + hh[None, :]
            tl.store(packed_ptr + dst, tl.load(lp_ptr + src))
            tl.store(packed_ptr + D * H + dst, tl.load(lg_ptr + src))
            tl.store(packed_ptr + 2 * D * H + dst, tl.load(rp_ptr + src))
            tl.store(packed_ptr + 3 * D * H + dst, tl.load(rg_ptr + src))
            tl.store(packed_ptr + 4 * D * H + dst, tl.load(og_ptr + src))
    x_rows = x_ptr + rows.to(tl.int64)[:, None] * D
    total = tl.zeros([BM], dtype=tl.float32)
    for c0 in range(0, D, 128):
        total += tl.sum(tl.load(x_rows + c0 + ck[None, :]), axis=1)
    mean = total / D
    sq = tl.zeros([BM], dtype=tl.float32)
    for c0 in range(0, D, 128):
        xc = tl.load(x_rows + c0 + ck[None, :]) - mean[:, None]
        sq += tl.sum(xc * xc, axis=1)
    rstd = 1.0 / tl.sqrt(sq / D + EPS)
    a_lp = tl.zeros([BM, H], dtype=tl.float32)
    a_lg = tl.zeros([BM, H], dtype=tl.float32)
    a_rp = tl.zeros([BM, H], dtype=tl.float32)
    a_rg = tl.zeros([BM, H], dtype=tl.float32)
    a_og = tl.zeros([BM, H], dtype=tl.float32)
    for c0 in range(0, D, 128):
        cols = c0 + ck
        xn = (tl.load(x_rows + cols[None, :]) - mean[:, None]) * rstd[:, None]
        xn = xn * tl.load(lnw_ptr + cols)[None, :] + tl.load(lnb_ptr + cols)[None, :]
        wt = packed_ptr + cols[:, None] * H + hh[None, :]  # W^T tile: [128 of D, H]
        a_lp = tl.dot(xn, tl.load(wt), a_lp)
        a_lg = tl.dot(xn, tl.load(wt + D * H), a_lg)
        a_rp = tl.dot(xn, tl.load(wt + 2 * D * H), a_rp)
        a_rg = tl.dot(xn, tl.load(wt + 3 * D * H), a_rg)
        a_og = tl.dot(xn, tl.load(wt + 4 * D * H), a_og)
    m = tl.load(mask_ptr + rows)[:, None]
    b = rows // NN
    ik = rows - b * NN
    lr = (b[:, None] * H + hh[None, :]).to(tl.int64) * NN + ik[:, None]
    tl.store(left_ptr + lr, a_lp * m * tl.sigmoid(a_lg))
    tl.store(right_ptr + lr, a_rp * m * tl.sigmoid(a_rg))
    tl.store(gate_ptr + rows.to(tl.int64)[:, None] * H + hh[None, :], tl.sigmoid(a_og))


@triton.jit
def _triangle(left_ptr, right_ptr, p_ptr, N, H: tl.constexpr, HB: tl.constexpr, BT: tl.constexpr):
    tiles = tl.cdiv(N, BT)
    ti = tl.program_id(0) // tiles
    tj = tl.program_id(0) % tiles
    z0 = tl.program_id(1) * HB  # HB hidden channels (of one batch) per program: one batched dot
    zz = tl.arange(0, HB)
    ii = ti * BT + tl.arange(0, BT)
    jj = tj * BT + tl.arange(0, BT)
    kk = tl.arange(0, BT)
    base = (z0 + zz).to(tl.int64)[:, None, None] * N * N
    acc = tl.zeros([HB, BT, BT], dtype=tl.float32)
    for k0 in range(0, N, BT):
        k_ok = (k0 + kk) < N
        a = tl.load(
            left_ptr + base + ii[None, :, None] * N + (k0 + kk)[None, None, :],
            mask=(ii < N)[None, :, None] & k_ok[None, None, :],
            other=0.0,
        )
        bt = tl.load(
            right_ptr + base + jj[None, None, :] * N + (k0 + kk)[None, :, None],
            mask=k_ok[None, :, None] & (jj < N)[None, None, :],
            other=0.0,
        )
        acc = tl.dot(a, bt, acc)
    b = z0 // H
    h = z0 % H + zz
    out = p_ptr + ((b * N + ii[None, :, None]).to(tl.int64) * N + jj[None, None, :]) * H + h[:, None, None]
    tl.store(out, acc, mask=(ii < N)[None, :, None] & (jj < N)[None, None, :])


@triton.jit
def _output(
    p_ptr,
    gate_ptr,
    lnw_ptr,
    lnb_ptr,
    wo_ptr,
    out_ptr,
    D: tl.constexpr,
    H: tl.constexpr,
    BM: tl.constexpr,
    EPS: tl.constexpr,
):
    rows = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    hh = tl.arange(0, H)
    p = tl.load(p_ptr + rows[:, None] * H + hh[None, :])
    mean = tl.sum(p, axis=1) / H
    pc = p - mean[:, None]
    rstd = 1.0 / tl.sqrt(tl.sum(pc * pc, axis=1) / H + EPS)
    a = pc * rstd[:, None] * tl.load(lnw_ptr + hh)[None, :] + tl.load(lnb_ptr + hh)[None, :]
    a = a * tl.load(gate_ptr + rows[:, None] * H + hh[None, :])
    dd = tl.arange(0, 128)
    for d0 in range(0, D, 128):
        wt = tl.load(wo_ptr + (d0 + dd)[None, :] * H + hh[:, None])  # to_out^T tile: [H, 128]
        tl.store(out_ptr + rows[:, None] * D + d0 + dd[None, :], tl.dot(a, wt))


def run(
    x,
    mask,
    norm_weight,
    norm_bias,
    left_proj,
    right_proj,
    left_gate,
    right_gate,
    out_gate,
    to_out_norm_weight,
    to_out_norm_bias,
    to_out,
):
    bs, n, _, dim = x.shape
    hidden = left_proj.shape[0]
    rows = bs * n * n
    left = torch.empty((bs, hidden, n, n), device=x.device, dtype=torch.float32)
    right = torch.empty_like(left)
    gate = torch.empty((rows, hidden), device=x.device, dtype=torch.float32)
    p = torch.empty((rows, hidden), device=x.device, dtype=torch.float32)
    out = torch.empty_like(x)
    packed = torch.zeros((5, dim, hidden), device=x.device, dtype=torch.float32)
    _project[(rows // 128,)](
        x,
        mask,
        norm_weight,
        norm_bias,
        left_proj,
        left_gate,
        right_proj,
        right_gate,
        out_gate,
        packed,
        left,
        right,
        gate,
        n * n,
        D=dim,
        H=hidden,
        BM=128,
        EPS=LN_EPS,
        num_warps=8,
        num_stages=1,
    )
    # 8 channels per program: 32 would need 512 KB of shared memory on a GPU (a launch failure, not the race)
    _triangle[(triton.cdiv(n, 32) ** 2, bs * hidden // 8)](
        left, right, p, n, H=hidden, HB=8, BT=32, num_warps=4, num_stages=2
    )
    _output[(rows // 128,)](
        p,
        gate,
        to_out_norm_weight,
        to_out_norm_bias,
        to_out,
        out,
        D=dim,
        H=hidden,
        BM=128,
        EPS=LN_EPS,
        num_warps=8,
        num_stages=1,  # a pipelined to_out loop would need 320 KB of shared memory at dim >= 640
    )
    return out
