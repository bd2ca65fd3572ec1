"""PyTorch reference for GPUMode TriMul ("outgoing" triangle multiplicative update, AlphaFold3).

fp32 throughout with TF32 disabled for the duration of the call (and restored afterwards), so a
candidate that switches TF32 on globally cannot loosen the reference it is compared with.
"""

import contextlib

import torch
import torch.nn.functional as F


@contextlib.contextmanager
def _exact_fp32():
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
        torch.set_float32_matmul_precision(saved[2])


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
    with _exact_fp32():
        dim, hidden = x.shape[-1], left_proj.shape[0]
        xn = F.layer_norm(x, (dim,), norm_weight, norm_bias)
        m = mask.unsqueeze(-1).to(x.dtype)
        left = F.linear(xn, left_proj) * m * torch.sigmoid(F.linear(xn, left_gate))
        right = F.linear(xn, right_proj) * m * torch.sigmoid(F.linear(xn, right_gate))
        out = torch.einsum("... i k d, ... j k d -> ... i j d", left, right)
        out = F.layer_norm(out, (hidden,), to_out_norm_weight, to_out_norm_bias)
        out = out * torch.sigmoid(F.linear(xn, out_gate))
        return F.linear(out, to_out)
