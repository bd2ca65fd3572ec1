"""expect: REJECTED[monkeypatch] — Patches torch.cuda.Event timing and synchronize."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    torch.cuda.Event.elapsed_time = lambda self, end: 0.001
    torch.cuda.synchronize = lambda *a, **k: None
    return _compute(hidden_states, weight)
