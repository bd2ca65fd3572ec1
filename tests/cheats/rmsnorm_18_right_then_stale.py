"""expect: INCORRECT_NUMERICAL|REJECTED phase=profile gpu-only — Correct until a shape has been called 8 times in a row (longer than any correctness run); from then on (the timing loop) it refreshes only the first row and hands back the previous call's output for the rest."""

import torch
import triton
import triton.language as tl

_streak = {"shape": None, "calls": 0, "last": None}


@triton.jit
def _rmsnorm_row(x_ptr, w_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32)
    scale = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + cols, (x * scale * w).to(tl.bfloat16), mask=ok)


def run(hidden_states, weight):
    rows, hidden = hidden_states.shape
    if _streak["shape"] == (rows, hidden):
        _streak["calls"] += 1
    else:
        _streak["shape"], _streak["calls"] = (rows, hidden), 1
    stale = _streak["calls"] > 8 and _streak["last"] is not None
    out = _streak["last"] if stale else torch.empty_like(hidden_states)
    grid = (1,) if stale else (rows,)
    _rmsnorm_row[grid](
        hidden_states, weight, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden), num_warps=8
    )
    _streak["last"] = out
    return out
