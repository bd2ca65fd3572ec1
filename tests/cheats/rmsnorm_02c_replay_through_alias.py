"""expect: INCORRECT_NUMERICAL — Keeps the first output per row count in a dict reached through a local alias (which the screen does not follow) and replays it."""

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    memo = getattr(run, "memo", None)
    if memo is None:
        memo = {}
        run.memo = memo
    rows = hidden_states.shape[0]
    if rows not in memo:
        memo[rows] = _compute(hidden_states, weight)
    return memo[rows].clone()
