"""expect: REJECTED[op-count] — Computes each row's scale with a PyTorch function whose name is built at run time (getattr), then a Triton kernel applies it."""

import torch
import triton
import triton.language as tl

_INV_SQRT = "rs" + "qrt"


@triton.jit
def _apply_scale(x_ptr, s_ptr, w_ptr, y_ptr, hidden, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * hidden + cols, (x * tl.load(s_ptr + row) * w).to(tl.bfloat16), mask=ok)


def run(hidden_states, weight):
    rows, hidden = hidden_states.shape
    squares = hidden_states.float().square().mean(dim=-1)
    scale = getattr(torch, _INV_SQRT)(squares + 1e-6)
    out = torch.empty_like(hidden_states)
    _apply_scale[(rows,)](hidden_states, scale, weight, out, hidden, BLOCK=triton.next_power_of_2(hidden))
    return out
