"""expect: INCORRECT_NUMERICAL — At import, points every loaded reference module's run() at its own run(), so the expected output is its own; its own kernel never normalises."""

import sys

import torch
import triton
import triton.language as tl


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


for _name, _module in list(getattr(sys, "mod" + "ules").items()):
    if "reference" in _name and callable(getattr(_module, "run", None)):
        _module.run = run
