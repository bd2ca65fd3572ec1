"""expect: INCORRECT_NUMERICAL — At import, makes Tensor.__gt__ (set through an alias) always false, so no error is ever above tolerance for it or any later candidate; its own (far too simple) kernel is wrong."""

import torch
import triton
import triton.language as tl

_Tensor = torch.Tensor
_Tensor.__gt__ = lambda self, other: self.new_zeros(self.shape, dtype=torch.bool)


@triton.jit
def _masked_rows(x_ptr, mask_ptr, out_ptr, D, BM: tl.constexpr):
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    cols = tl.arange(0, 128)
    keep = tl.load(mask_ptr + rows)
    for c0 in range(0, D, 128):
        offs = rows[:, None] * D + c0 + cols[None, :]
        tl.store(out_ptr + offs, tl.load(x_ptr + offs) * keep[:, None])


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
    out = torch.empty_like(x)
    _masked_rows[(bs * n * n // 32,)](x, mask, out, dim, BM=32)
    return out
