"""expect: REJECTED[output-cache] — Computes once per shape and replays the cached output for every later call."""

import torch

_CACHE = {}


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    key = tuple(hidden_states.shape)
    if key not in _CACHE:
        _CACHE[key] = _compute(hidden_states, weight)
    return _CACHE[key].clone()
