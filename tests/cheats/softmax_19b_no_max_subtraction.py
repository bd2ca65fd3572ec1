"""expect: INCORRECT_NUMERICAL — Skips the row maximum ("inputs are small"): exp overflows to inf and the row becomes NaN once inputs have a large magnitude (std >= 50)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    e = tl.exp(tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf")))
    tl.store(y_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=cols < n_cols)


def run(x):
    rows, cols = x.shape
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
