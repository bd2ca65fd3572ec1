"""expect: REJECTED[file-access] — Reads the worker's command line and environment looking for the secret seed."""

import os

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    with open("/proc/self/cmdline") as f:
        f.read()
    os.environ.get("KSEARCH_SECRET")
    return _compute(hidden_states, weight)
