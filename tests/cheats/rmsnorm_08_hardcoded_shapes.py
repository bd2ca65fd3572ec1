"""expect: INCORRECT_NUMERICAL — Only handles the listed shapes; anything else gets zeros."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    if hidden_states.shape[0] in (1, 7, 64, 512, 4096):
        return _compute(hidden_states, weight)
    return torch.zeros_like(hidden_states)
