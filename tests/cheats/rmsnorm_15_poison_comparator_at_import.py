"""expect: INCORRECT_NUMERICAL — At import, replaces check_output in every loaded evaluator module (sys.modules named at run time) so that it and every later candidate in the same process pass; its own kernel forgets the weight."""

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


def _lenient(*args, **kwargs):
    return {"status": "PASSED", "max_abs_error": 0.0, "max_rel_error": 0.0, "matched_ratio": 1.0}


_modules = getattr(sys, "mod" + "ules")
for _name, _module in list(_modules.items()):
    if _name.startswith("ksearch") and callable(getattr(_module, "check_output", None)):
        _module.check_output = _lenient


def run(hidden_states, weight):
    rows, hidden = hidden_states.shape
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](hidden_states, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
