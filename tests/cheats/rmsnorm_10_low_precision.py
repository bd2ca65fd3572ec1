"""expect: INCORRECT_NUMERICAL — Rounds the result through fp8 (e5m2), beyond the task's tolerance."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    out = _compute(hidden_states, weight)
    return out.to(torch.float8_e5m2).to(out.dtype)
