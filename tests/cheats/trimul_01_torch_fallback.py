"""expect: REJECTED[fallback] — A Triton kernel that fails, caught by try/except that falls back to PyTorch."""

import torch
import triton
import triton.language as tl


@triton.jit
def _broken(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr))


def _compute(
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
    dim, hidden = x.shape[-1], left_proj.shape[0]
    xn = torch.nn.functional.layer_norm(x, (dim,), norm_weight, norm_bias)
    m = mask.unsqueeze(-1).to(x.dtype)
    left = (xn @ left_proj.T) * m * torch.sigmoid(xn @ left_gate.T)
    right = (xn @ right_proj.T) * m * torch.sigmoid(xn @ right_gate.T)
    out = torch.einsum("bikd,bjkd->bijd", left, right)
    out = torch.nn.functional.layer_norm(out, (hidden,), to_out_norm_weight, to_out_norm_bias)
    return (out * torch.sigmoid(xn @ out_gate.T)) @ to_out.T


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
    try:
        _broken[(1,)](x, not_an_argument=1)
        return x
    except Exception:
        return _compute(
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
        )
