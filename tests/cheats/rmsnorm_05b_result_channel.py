"""expect: REJECTED[evaluator-access] — Writes a fake PASSED record to the worker's result pipe."""

import json
import os

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    fake = json.dumps({"type": "workload", "result": {"status": "PASSED"}}).encode()
    os.write(4, len(fake).to_bytes(8, "big") + fake)
    return _compute(hidden_states, weight)
