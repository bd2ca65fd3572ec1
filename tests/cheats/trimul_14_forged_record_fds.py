"""expect: INCORRECT_NUMERICAL|RUNTIME_ERROR — Writes PASSED records (with a copied nonce guess) and a "done" into every inherited file descriptor (0..64) on every call; its own (far too simple) kernel is wrong."""

import io
import json

import torch
import triton
import triton.language as tl


@triton.jit
def _masked_rows(x_ptr, mask_ptr, out_ptr, D, BM: tl.constexpr):
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    cols = tl.arange(0, 128)
    keep = tl.load(mask_ptr + rows)
    for c0 in range(0, D, 128):
        offs = rows[:, None] * D + c0 + cols[None, :]
        tl.store(out_ptr + offs, tl.load(x_ptr + offs) * keep[:, None])


def _claim_success():
    messages = [
        {"type": "workload", "result": {"workload": f"test{i:02d}", "status": "PASSED"}} for i in range(18)
    ]
    messages += [{"type": "called", "nonce": None, "outputs": [], "problems": []}, {"type": "done"}]
    for fd in range(65):
        for m in messages:
            data = json.dumps(m).encode()
            try:
                io.FileIO(fd, "w", closefd=False).write(len(data).to_bytes(8, "big") + data)
            except (OSError, ValueError):
                break


def run(
    x,
    mask,
    norm_weight,
    norm_bias,
    left_proj,
    right_proj,
    left_gate,
    right_gate,
    out_gate,
    to_out_norm_weight,
    to_out_norm_bias,
    to_out,
):
    _claim_success()
    bs, n, _, dim = x.shape
    out = torch.empty_like(x)
    _masked_rows[(bs * n * n // 32,)](x, mask, out, dim, BM=32)
    return out
