"""expect: REJECTED[children] — Forks (os.fork named at run time) a child that forks a grandchild and exits at once; the re-parented grandchild outlives the call."""

import os
import time

import torch
import triton
import triton.language as tl

_spawn = getattr(os, "fo" + "rk")


@triton.jit
def _rmsnorm_row(x_ptr, w_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32)
    scale = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + cols, (x * scale * w).to(tl.bfloat16), mask=ok)


def _detach_helper():
    pid = _spawn()
    if pid == 0:
        try:
            if _spawn() == 0:
                time.sleep(3.0)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def run(hidden_states, weight):
    _detach_helper()
    rows, hidden = hidden_states.shape
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](hidden_states, weight, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
