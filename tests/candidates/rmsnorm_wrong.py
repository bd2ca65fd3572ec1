"""A Triton rmsnorm that forgets the weight (numerically wrong)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _no_weight(x_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < hidden
    x = tl.load(x_ptr + row * hidden + offs, mask=mask, other=0.0).to(tl.float32)
    inv = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + offs, (x * inv).to(tl.bfloat16), mask=mask)


def run(hidden_states, weight):
    out = torch.empty_like(hidden_states)
    rows, hidden = hidden_states.shape
    _no_weight[(rows,)](hidden_states, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
