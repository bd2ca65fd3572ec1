"""A Triton rmsnorm that divides by zero for every element (NaN/inf output)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _nan(x_ptr, y_ptr, hidden, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < hidden
    x = tl.load(x_ptr + row * hidden + offs, mask=mask, other=0.0).to(tl.float32)
    zero = tl.sum(x * 0.0, axis=0)
    tl.store(y_ptr + row * hidden + offs, (zero / zero + x).to(tl.bfloat16), mask=mask)


def run(hidden_states, weight):
    out = torch.empty_like(hidden_states)
    rows, hidden = hidden_states.shape
    _nan[(rows,)](hidden_states, out, hidden, BLOCK=triton.next_power_of_2(hidden))
    return out
