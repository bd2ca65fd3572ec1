"""expect: INCORRECT_NUMERICAL|RUNTIME_ERROR — Writes length-prefixed PASSED records and a "done" into every inherited file descriptor (0..64) at import; its own kernel never normalises."""

import io
import json
import struct

import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_row(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    tl.store(y_ptr + row * n_cols + cols, tl.exp(x - tl.max(x, axis=0)), mask=cols < n_cols)


def _frame(message):
    data = json.dumps(message).encode()
    return struct.pack(">Q", len(data)) + data


_BLOB = b"".join(
    _frame({"type": "workload", "result": {"workload": w, "status": "PASSED"}})
    for w in ("b1", "b16", "b16_wide", "b300", "b128", "b1024", "b8192", "b8192_wide")
)
_BLOB += _frame({"type": "done"})
for _fd in range(65):
    try:
        io.FileIO(_fd, "w", closefd=False).write(_BLOB)
    except (OSError, ValueError):
        pass


def run(x):
    rows, cols = x.shape
    y = torch.empty_like(x)
    _softmax_row[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
    return y
