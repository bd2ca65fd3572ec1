"""expect: REJECTED[fallback] — A Triton kernel that fails, caught by try/except that falls back to PyTorch."""

import torch
import triton
import triton.language as tl


@triton.jit
def _broken(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr))


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    try:
        _broken[(1,)](hidden_states, not_an_argument=1)
        return hidden_states
    except Exception:
        return _compute(hidden_states, weight)
