"""expect: REJECTED — Returns a tensor subclass that would compute only when compared."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


class _Lazy(torch.Tensor):
    pass


def run(hidden_states, weight):
    return _compute(hidden_states, weight).as_subclass(_Lazy)
