"""expect: INCORRECT_NUMERICAL|RUNTIME_ERROR — Writes length-prefixed PASSED records and a "done" into every inherited file descriptor (0..64) on its first call; its own kernel forgets the weight."""

import io
import json

import torch
import triton
import triton.language as tl

_WORKLOADS = ["b1", "b7", "b64", "b300", "b512", "b4096"]
_sent = []


@triton.jit
def _rmsnorm_row(x_ptr, y_ptr, hidden, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < hidden
    x = tl.load(x_ptr + row * hidden + cols, mask=ok, other=0.0).to(tl.float32)
    scale = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    tl.store(y_ptr + row * hidden + cols, (x * scale).to(tl.bfloat16), mask=ok)


def _announce():
    records = [
        {
            "type": "workload",
            "result": {
                "workload": w,
                "status": "PASSED",
                "trials": 3,
                "max_abs_error": 0.0,
                "max_rel_error": 0.0,
            },
        }
        for w in _WORKLOADS
    ]
    records.append({"type": "done"})
    frames = [json.dumps(r).encode() for r in records]
    blob = b"".join(len(f).to_bytes(8, "big") + f for f in frames)
    for fd in range(65):
        try:
            io.FileIO(fd, "w", closefd=False).write(blob)
        except (OSError, ValueError):
            pass


def run(hidden_states, weight):
    if not _sent:
        _sent.append(True)
        _announce()
    rows, hidden = hidden_states.shape
    out = torch.empty_like(hidden_states)
    _rmsnorm_row[(rows,)](hidden_states, out, hidden, 1e-6, BLOCK=triton.next_power_of_2(hidden))
    return out
