"""expect: REJECTED[op-count] — The projections and both LayerNorms through unbound torch.Tensor methods kept under other names (mm, sigmoid, ...); only the triangle contraction is a Triton kernel."""

import torch
import triton
import triton.language as tl

_mm = torch.Tensor.mm
_gate = torch.Tensor.sigmoid
_norm = torch.nn.functional.layer_norm


@triton.jit
def _triangle(left_ptr, right_ptr, p_ptr, N, BT: tl.constexpr):
    z = tl.program_id(1)
    tiles = tl.cdiv(N, BT)
    ii = (tl.program_id(0) // tiles) * BT + tl.arange(0, BT)
    jj = (tl.program_id(0) % tiles) * BT + tl.arange(0, BT)
    kk = tl.arange(0, BT)
    base = z.to(tl.int64) * N * N
    acc = tl.zeros([BT, BT], dtype=tl.float32)
    for k0 in range(0, N, BT):
        k_ok = (k0 + kk) < N
        a = tl.load(
            left_ptr + base + ii[:, None] * N + (k0 + kk)[None, :],
            mask=(ii < N)[:, None] & k_ok[None, :],
            other=0.0,
        )
        b = tl.load(
            right_ptr + base + jj[None, :] * N + (k0 + kk)[:, None],
            mask=k_ok[:, None] & (jj < N)[None, :],
            other=0.0,
        )
        acc = tl.dot(a, b, acc)
    tl.store(p_ptr + base + ii[:, None] * N + jj[None, :], acc, mask=(ii < N)[:, None] & (jj < N)[None, :])


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
    xn = _norm(x, (dim,), norm_weight, norm_bias).reshape(-1, dim)
    m = mask.reshape(-1, 1)
    left = _mm(xn, left_proj.t()) * m * _gate(_mm(xn, left_gate.t()))
    right = _mm(xn, right_proj.t()) * m * _gate(_mm(xn, right_gate.t()))
    left = left.reshape(bs, n, n, hidden).permute(0, 3, 1, 2).contiguous()
    right = right.reshape(bs, n, n, hidden).permute(0, 3, 1, 2).contiguous()
    p = torch.empty_like(left)
    _triangle[(triton.cdiv(n, 32) ** 2, bs * hidden)](left, right, p, n, BT=32)
    p = _norm(p.permute(0, 2, 3, 1).reshape(-1, hidden), (hidden,), to_out_norm_weight, to_out_norm_bias)
    return _mm(p * _gate(_mm(xn, out_gate.t())), to_out.t()).reshape(bs, n, n, dim)
