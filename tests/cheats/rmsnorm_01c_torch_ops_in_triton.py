"""expect: REJECTED[torch-compute] — Labelled Triton but computes the result with PyTorch operators."""

import torch
import triton


@triton.jit
def _noop(p):
    pass


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    return _compute(hidden_states, weight)
