"""Returns the right values with a trailing singleton dimension (wrong shape)."""

import torch


def run(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()
    return y.to(torch.bfloat16).unsqueeze(-1)
