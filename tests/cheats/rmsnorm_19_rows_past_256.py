"""expect: INCORRECT_NUMERICAL — One program per row on a grid capped at 256 programs ("never more programs than the GPU holds at once"), but no loop over the rest: rows from 256 on are never written."""

import torch
import triton
import triton.language as tl

MAX_PROGRAMS = 256


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
    out = torch.empty_like(hidden_states)
    grid = (min(rows, MAX_PROGRAMS),)
    _rmsnorm_row[grid](hidden_states, weight, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
