"""expect: REJECTED — Zeroes its inputs after computing, so a reference computed later would agree."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    out = _compute(hidden_states, weight)
    hidden_states.zero_()
    return out
