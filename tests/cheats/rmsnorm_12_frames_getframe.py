"""expect: INCORRECT_NUMERICAL — Walks the caller's frames (sys._getframe named at run time) for the expected output and returns it; otherwise its own kernel, which forgets the weight."""

import sys

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_row(x_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    scale = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + cols, (x * scale).to(tl.bfloat16), mask=ok)


def _answer(like):
    frame = getattr(sys, "_get" + "frame")(1)
    while frame is not None:
        for name, value in frame.f_locals.items():
            if "expect" not in name and "ref" not in name:
                continue
            for t in value if isinstance(value, list | tuple) else [value]:
                if (
                    isinstance(t, torch.Tensor)
                    and t.shape == like.shape
                    and t.dtype == like.dtype
                    and t is not like
                ):
                    return t
        frame = frame.f_back
    return None


def run(hidden_states, weight):
    found = _answer(hidden_states)
    if found is not None:
        return found
    rows, hidden = hidden_states.shape
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](hidden_states, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
