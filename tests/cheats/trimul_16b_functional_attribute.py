"""expect: REJECTED[op-count] — nn.functional reached as an attribute of an nn module (torch.nn.modules.linear.F) and kept in a table; only the triangle contraction is a Triton kernel."""

import torch
import triton
import triton.language as tl

_F = torch.nn.modules.linear.F
_OPS = {"proj": _F.linear, "norm": _F.layer_norm, "gate": torch.special.expit}


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
    proj, norm, gate = _OPS["proj"], _OPS["norm"], _OPS["gate"]
    bs, n, _, dim = x.shape
    hidden = left_proj.shape[0]
    xn = norm(x, (dim,), norm_weight, norm_bias)
    m = mask.unsqueeze(-1)
    left = (proj(xn, left_proj) * m * gate(proj(xn, left_gate))).permute(0, 3, 1, 2).contiguous()
    right = (proj(xn, right_proj) * m * gate(proj(xn, right_gate))).permute(0, 3, 1, 2).contiguous()
    p = torch.empty_like(left)
    _triangle[(triton.cdiv(n, 32) ** 2, bs * hidden)](left, right, p, n, BT=32)
    p = norm(p.permute(0, 2, 3, 1), (hidden,), to_out_norm_weight, to_out_norm_bias)
    return proj(p * gate(proj(xn, out_gate)), to_out)
