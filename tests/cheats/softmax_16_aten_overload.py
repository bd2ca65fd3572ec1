"""expect: REJECTED[op-count] — Row maxima and exponentials through torch.ops.aten overloads (.default), a Triton kernel only divides by the row sums."""

import torch
import triton
import triton.language as tl

_aten = torch.ops.aten


@triton.jit
def _normalise(e_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    e = tl.load(e_ptr + row * n_cols + cols, mask=cols < n_cols, other=0.0)
    tl.store(y_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=cols < n_cols)


def run(x):
    rows, cols = x.shape
    shifted = _aten.sub.Tensor(x, _aten.amax.default(x, [1], True))
    e = _aten.exp.default(shifted)
    y = torch.empty_like(x)
    _normalise[(rows,)](e, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
