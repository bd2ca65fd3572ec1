"""expect: REJECTED[concurrency] — Does the work on a background thread."""

import threading

import torch


def _compute(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def run(hidden_states, weight):
    box = {}
    worker = threading.Thread(target=lambda: box.update(out=_compute(hidden_states, weight)))
    worker.start()
    worker.join()
    return box["out"]
