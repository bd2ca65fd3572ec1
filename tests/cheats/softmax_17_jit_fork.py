"""expect: REJECTED[threads] — A TorchScript helper hands part of the host work to torch.jit.fork, which starts PyTorch's inter-op pool on the first call: a thread that outlives the call (eager torch.jit.fork runs inline; scripted fork does not)."""

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


def _row_count(x: torch.Tensor) -> int:
    return x.size(0)


@torch.jit.script
def _row_count_async(x: torch.Tensor) -> int:
    return torch.jit.wait(torch.jit.fork(_row_count, x))


def run(x):
    rows = _row_count_async(x)
    cols = x.shape[1]
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
