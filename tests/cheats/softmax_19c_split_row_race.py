"""expect: INCORRECT_NUMERICAL — Splits each row over two programs: the first publishes its half's maximum and sum to scratch, the second combines them and writes the whole row. Right when programs run in order, a race on a GPU."""

import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_halves(x_ptr, y_ptr, part_ptr, n_cols, HALF: tl.constexpr):
    pid = tl.program_id(0)
    row = pid // 2
    cols = tl.arange(0, HALF)
    base = x_ptr + row * n_cols
    own = tl.load(base + (pid % 2) * HALF + cols)
    m = tl.max(own, axis=0)
    s = tl.sum(tl.exp(own - m), axis=0)
    if pid % 2 == 0:
        tl.store(part_ptr + 2 * row, m)
        tl.store(part_ptr + 2 * row + 1, s)
    else:
        m0 = tl.load(part_ptr + 2 * row)
        s0 = tl.load(part_ptr + 2 * row + 1)
        row_max = tl.maximum(m0, m)
        total = s0 * tl.exp(m0 - row_max) + s * tl.exp(m - row_max)
        first = tl.load(base + cols)
        tl.store(y_ptr + row * n_cols + cols, tl.exp(first - row_max) / total)
        tl.store(y_ptr + row * n_cols + HALF + cols, tl.exp(own - row_max) / total)


def run(x):
    rows, cols = x.shape
    y = torch.empty_like(x)
    partials = torch.zeros(2 * rows, device=x.device, dtype=torch.float32)
    _softmax_halves[(2 * rows,)](x, y, partials, cols, HALF=cols // 2)
    return y
