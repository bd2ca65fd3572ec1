"""expect: INCORRECT_NUMERICAL|REJECTED phase=profile gpu-only — Correct until a shape has been called 8 times in a row (longer than any correctness run); from then on (the timing loop) it refreshes only the first row and hands back the previous call's output for the rest."""

import torch
import triton
import triton.language as tl

_streak = {"shape": None, "calls": 0, "last": None}


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=cols < n_cols)


def run(x):
    rows, cols = x.shape
    if _streak["shape"] == (rows, cols):
        _streak["calls"] += 1
    else:
        _streak["shape"], _streak["calls"] = (rows, cols), 1
    stale = _streak["calls"] > 8 and _streak["last"] is not None
    y = _streak["last"] if stale else torch.empty_like(x)
    _softmax_row[(1,) if stale else (rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols), num_warps=16)
    _streak["last"] = y
    return y
