"""expect: INCORRECT_NUMERICAL — Returns zeros."""

import torch


def run(hidden_states, weight):
    return torch.zeros_like(hidden_states)
