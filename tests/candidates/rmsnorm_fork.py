"""Forks: the child would otherwise carry on as a second copy of the worker."""

import os

import torch


def run(hidden_states, weight):
    pid = os.fork()
    if pid == 0:
        import time

        time.sleep(60)  # a lingering child; the worker must kill it
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)
