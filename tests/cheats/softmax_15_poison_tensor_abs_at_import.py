"""expect: INCORRECT_NUMERICAL — At import, replaces torch.Tensor.abs (through an alias) with zeros, so every later |got - expected| in the process is zero; its own kernel never normalises."""

import torch
import triton
import triton.language as tl

_Tensor = torch.Tensor
_Tensor.abs = lambda self: self.new_zeros(self.shape)


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    tl.store(y_ptr + row * n_cols + cols, tl.exp(x - tl.max(x, axis=0)), mask=cols < n_cols)


def run(x):
    rows, cols = x.shape
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
