"""A Triton kernel that uses an undefined name inside the kernel (fails at compile time)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _broken(x_ptr, y_ptr, hidden, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    tl.store(y_ptr + offs, x * undefined_scale)  # noqa: F821


def run(hidden_states, weight):
    out = torch.empty_like(hidden_states)
    _broken[(hidden_states.shape[0],)](hidden_states, out, hidden_states.shape[1], BLOCK=4096)
    return out
