"""expect: REJECTED[rng-access] — Re-seeds the generator to predict the evaluator's inputs."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    torch.manual_seed(9371)
    return _compute(hidden_states, weight)
