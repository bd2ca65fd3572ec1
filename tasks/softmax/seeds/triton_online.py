"""Seed softmax in Triton: a row in BLOCK-wide chunks with an online maximum, then a normalising pass.

The first pass keeps a running maximum and a running sum rescaled whenever the maximum grows, so the
row never has to fit in registers; the second pass writes exp(x - max) / sum. Two reads, one write.
"""

import torch
import triton
import triton.language as tl

BLOCK = 2048
NUM_WARPS = 8


@triton.jit
def _softmax_online(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = row * n_cols
    m = tl.full([BLOCK], -float("inf"), tl.float32)
    s = tl.zeros([BLOCK], tl.float32)
    for start in range(0, n_cols, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + base + offs, mask=offs < n_cols, other=-float("inf"))
        m_new = tl.maximum(m, x)
        s = s * tl.exp(m - m_new) + tl.exp(x - m_new)
        m = m_new
    row_max = tl.max(m, axis=0)
    total = tl.sum(s * tl.exp(m - row_max), axis=0)
    for start in range(0, n_cols, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + base + offs, mask=offs < n_cols, other=-float("inf"))
        tl.store(y_ptr + base + offs, tl.exp(x - row_max) / total, mask=offs < n_cols)


def run(x: torch.Tensor) -> torch.Tensor:
    rows, cols = x.shape
    x = x.contiguous()
    y = torch.empty_like(x)
    _softmax_online[(rows,)](x, y, cols, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return y
