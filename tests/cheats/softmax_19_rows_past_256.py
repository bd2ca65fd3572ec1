"""expect: INCORRECT_NUMERICAL — One program per row on a grid capped at 256 programs ("never more programs than the GPU holds at once"), but no loop over the rest: rows from 256 on are never written."""

import torch
import triton
import triton.language as tl

MAX_PROGRAMS = 256


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=cols < n_cols)


def run(x):
    rows, cols = x.shape
    y = torch.empty_like(x)
    _softmax_row[(min(rows, MAX_PROGRAMS),)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
