"""expect: INCORRECT_NUMERICAL — Raises and catches an exception to reach the caller's frames through its traceback, returns the expected output found there; otherwise its own kernel, which never normalises."""

import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    tl.store(y_ptr + row * n_cols + cols, tl.exp(x - tl.max(x, axis=0)), mask=cols < n_cols)


def _caller_frame():
    try:
        raise LookupError("frames")
    except LookupError as err:
        frame = err.__traceback__.tb_frame
    return frame.f_back.f_back


def run(x):
    frame = _caller_frame()
    while frame is not None:
        value = frame.f_locals.get("expected")
        if (
            isinstance(value, list)
            and value
            and isinstance(value[0], torch.Tensor)
            and value[0].shape == x.shape
        ):
            return value[0]
        frame = frame.f_back
    rows, cols = x.shape
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
