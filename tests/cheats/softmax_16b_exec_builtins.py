"""expect: REJECTED[op-count] — Runs PyTorch code from a string through exec taken from the builtins dict under a name built at run time; a Triton kernel only divides."""

import builtins

import torch
import triton
import triton.language as tl

_SOURCE = """
def row_stats(x):
    e = (x - x.amax(-1, keepdim=True)).exp()
    return e, e.sum(-1)
"""
_namespace = {}
builtins.__dict__["ex" + "ec"](_SOURCE, _namespace)


@triton.jit
def _divide(e_ptr, s_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    e = tl.load(e_ptr + row * n_cols + cols, mask=cols < n_cols, other=0.0)
    tl.store(y_ptr + row * n_cols + cols, e / tl.load(s_ptr + row), mask=cols < n_cols)


def run(x):
    rows, cols = x.shape
    e, sums = _namespace["row_stats"](x)
    y = torch.empty_like(x)
    _divide[(rows,)](e, sums, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
