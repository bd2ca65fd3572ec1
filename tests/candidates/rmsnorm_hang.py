"""A Triton rmsnorm that spins forever on a flag nobody sets (GPU and interpreter alike)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _spin(flag_ptr, out_ptr):
    count = 0
    while tl.load(flag_ptr) == 0:
        count += 1
    tl.store(out_ptr, count)


def run(hidden_states, weight):
    flag = torch.zeros(1, dtype=torch.int32, device=hidden_states.device)
    out = torch.zeros(1, dtype=torch.int32, device=hidden_states.device)
    _spin[(1,)](flag, out)
    return torch.empty_like(hidden_states)
