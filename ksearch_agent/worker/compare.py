"""Comparing candidate outputs with the reference under the task's tolerance.

An element fails only when its absolute error exceeds atol AND its relative error exceeds rtol
(FlashInfer-Bench's rule); a non-finite value where the reference is finite always fails. A task may
allow a fraction of failing elements (required_matched_ratio).
"""

from __future__ import annotations

from typing import Any

import torch


def _fmt_index(flat: int, shape: tuple[int, ...]) -> list[int]:
    index = []
    for dim in reversed(shape):
        index.append(flat % dim if dim else 0)
        flat //= max(dim, 1)
    return list(reversed(index))


def check_output(name: str, out: Any, ref: torch.Tensor, tol: dict[str, float]) -> dict[str, Any]:
    """Status, errors and a short actionable log line for one output tensor."""
    if type(out) is not torch.Tensor:
        # A tensor subclass can run code when it is read or compared: refused, whatever it would compute.
        return {
            "status": "REJECTED",
            "log": f"output {name!r} is a {type(out).__module__}.{type(out).__qualname__}, "
            "not a plain torch.Tensor",
        }
    if tuple(out.shape) != tuple(ref.shape):
        return {
            "status": "INCORRECT_SHAPE",
            "log": f"output {name!r} has shape {list(out.shape)}, expected {list(ref.shape)}",
        }
    if out.dtype != ref.dtype:
        return {
            "status": "INCORRECT_DTYPE",
            "log": f"output {name!r} has dtype {str(out.dtype)[6:]}, expected {str(ref.dtype)[6:]}",
        }
    if out.device != ref.device:
        return {
            "status": "RUNTIME_ERROR",
            "log": f"output {name!r} is on {out.device}, expected {ref.device}",
        }
    work = torch.float64 if ref.numel() <= 64 * 1024 * 1024 else torch.float32
    o, r = out.detach().to(work), ref.detach().to(work)
    abs_err = (o - r).abs()
    rel_err = abs_err / r.abs().clamp_min(torch.finfo(work).tiny)
    bad = (abs_err > tol["atol"]) & (rel_err > tol["rtol"])
    bad |= ~torch.isfinite(o) & torch.isfinite(r)
    bad |= torch.isnan(o) & ~torch.isnan(r)
    n_bad = int(bad.sum().item())
    numel = max(ref.numel(), 1)
    finite_abs = torch.nan_to_num(abs_err, nan=float("inf"))
    worst = int(torch.argmax(finite_abs).item()) if ref.numel() else 0
    max_abs = float(finite_abs.max().item()) if ref.numel() else 0.0
    max_rel = float(torch.nan_to_num(rel_err, nan=float("inf")).max().item()) if ref.numel() else 0.0
    matched = 1.0 - n_bad / numel
    result: dict[str, Any] = {
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
        "matched_ratio": matched,
        "worst_index": _fmt_index(worst, tuple(ref.shape)),
    }
    ok = matched >= tol["required_matched_ratio"] and (n_bad == 0 or tol["required_matched_ratio"] < 1.0)
    result["status"] = "PASSED" if ok else "INCORRECT_NUMERICAL"
    if not ok:
        got, exp = o.reshape(-1)[worst].item(), r.reshape(-1)[worst].item()
        result["log"] = (
            f"output {name!r}: {n_bad}/{numel} elements out of tolerance "
            f"(rtol={tol['rtol']:g}, atol={tol['atol']:g}); worst at {result['worst_index']}: "
            f"got {got:.6g}, expected {exp:.6g} (abs {max_abs:.3g}, rel {max_rel:.3g})"
        )
        if not bool(torch.isfinite(o).all()):
            result["log"] += (
                f"; {int((~torch.isfinite(o)).sum().item())} non-finite values (NaN/inf) in the output"
            )
    return result
