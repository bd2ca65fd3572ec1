"""expect: REJECTED[no-launch] — Small batches are computed with NumPy on a CPU copy ("launch overhead dominates"); the Triton kernel is only used from 512 rows up, so no call of the checked workloads launches anything."""

import numpy as np
import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=cols < n_cols)


def _host_softmax(x):
    a = x.detach().cpu().numpy()
    e = np.e ** (a - a.max(axis=-1, keepdims=True))
    return torch.from_numpy(e / e.sum(axis=-1, keepdims=True)).to(x.device)


def run(x):
    rows, cols = x.shape
    if rows < 512:
        return _host_softmax(x)
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
