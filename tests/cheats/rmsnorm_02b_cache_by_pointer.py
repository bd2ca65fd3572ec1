"""expect: REJECTED[output-cache] — Caches outputs keyed by the input's data_ptr."""

import torch

_CACHE = {}


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    key = (hidden_states.data_ptr(), tuple(hidden_states.shape))
    if key in _CACHE:
        return _CACHE[key]
    _CACHE[key] = _compute(hidden_states, weight)
    return _CACHE[key]
