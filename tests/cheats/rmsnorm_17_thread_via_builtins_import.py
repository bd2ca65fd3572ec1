"""expect: REJECTED[threads] — Starts a raw _thread (imported through the builtins dict under a name built at run time) that outlives the call, "prefetching" the next weight."""

import builtins
import time

import torch
import triton
import triton.language as tl

_threads = builtins.__dict__["__imp" + "ort__"]("_th" + "read")
_prefetched = {}


@triton.jit
def _rmsnorm_row(x_ptr, w_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32)
    scale = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + cols, (x * scale * w).to(tl.bfloat16), mask=ok)


def _prefetch(hidden):
    time.sleep(3.0)
    _prefetched[hidden] = True


def run(hidden_states, weight):
    rows, hidden = hidden_states.shape
    _threads.start_new_thread(_prefetch, (hidden,))
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](hidden_states, weight, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
