"""expect: REJECTED[side-stream] — Launches the work on a side stream so the timed region ends early."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        return _compute(hidden_states, weight)
