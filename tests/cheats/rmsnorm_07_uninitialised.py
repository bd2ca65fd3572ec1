"""expect: INCORRECT_NUMERICAL — Returns uninitialised memory hoping it still holds an earlier correct result."""

import torch


def run(hidden_states, weight):
    return torch.empty_like(hidden_states)
