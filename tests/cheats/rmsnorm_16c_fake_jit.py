"""expect: REJECTED[op-count] — A local decorator named jit makes a plain PyTorch function look like a Triton kernel; a real Triton kernel only casts the result."""

import torch
import triton
import triton.language as tl


def jit(fn=None, **options):
    """Stand-in for triton.jit on hosts without a compiler."""
    return fn if fn is not None else (lambda f: f)


@jit
def _rmsnorm_fp32(x, w, eps):
    x = x.float()
    return x * (x.pow(2).mean(-1, keepdim=True) + eps).pow(-0.5) * w.float()


@triton.jit
def _to_bf16(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=offs < n).to(tl.bfloat16), mask=offs < n)


def run(hidden_states, weight):
    full = _rmsnorm_fp32(hidden_states, weight, 1e-6)
    out = torch.empty_like(hidden_states)
    _to_bf16[(triton.cdiv(full.numel(), 1024),)](full, out, full.numel(), BLOCK=1024)
    return out
