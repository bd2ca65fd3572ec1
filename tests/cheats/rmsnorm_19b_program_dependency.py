"""expect: INCORRECT_NUMERICAL — Program 0 converts the weight to fp32 into a scratch buffer that every other program reads: right when programs run in order (the plain interpreter), a race on a GPU."""

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_row(x_ptr, w_ptr, wf_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    if row == 0:  # convert the weight once for everyone
        tl.store(wf_ptr + cols, tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32), mask=ok)
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    w = tl.load(wf_ptr + cols, mask=ok, other=0.0)
    scale = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + cols, (x * scale * w).to(tl.bfloat16), mask=ok)


def run(hidden_states, weight):
    rows, hidden = hidden_states.shape
    weight_f32 = torch.zeros(hidden, device=weight.device, dtype=torch.float32)
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](
        hidden_states, weight, weight_f32, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden)
    )
    return out
