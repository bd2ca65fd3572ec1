"""A Triton kernel that stores far outside any allocation (illegal memory access on a GPU)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _bad_store(y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs + (1 << 40), tl.zeros([BLOCK], dtype=tl.float32), mask=offs < n)


def run(hidden_states, weight):
    y = torch.empty(hidden_states.shape, dtype=torch.float32, device=hidden_states.device)
    _bad_store[(1,)](y, y.numel(), BLOCK=1024)
    return y.to(torch.bfloat16)
