"""Making the Triton CPU interpreter honest about bf16 ``tl.dot``.

The interpreter keeps bf16 values as raw 16-bit integers and multiplies those with numpy, so a bf16
``tl.dot`` returns garbage. We widen bf16 operands to fp32 first (exact: bf16 is the top half of an
fp32), so a correct kernel is never failed and a wrong one never passed because of the interpreter.
"""

from __future__ import annotations

from typing import Any


def patch_bf16_dot() -> bool:
    """Install the fix; returns False when this Triton's interpreter has a different shape."""
    try:
        import numpy as np
        import triton.language as tl
        from triton.runtime import interpreter as interp
    except ImportError:
        return False
    builder = getattr(interp, "InterpreterBuilder", None)
    handle = getattr(interp, "TensorHandle", None)
    if builder is None or handle is None or not hasattr(builder, "create_dot"):
        return False
    if getattr(builder.create_dot, "_ksearch_patched", False):
        return True
    original = builder.create_dot

    def widen(h: Any) -> Any:
        if h.dtype.scalar == tl.bfloat16 if hasattr(h.dtype, "scalar") else h.dtype == tl.bfloat16:
            bits = np.asarray(h.data).astype(np.uint32) << np.uint32(16)
            return handle(bits.view(np.float32), tl.float32)
        return h

    def create_dot(self: Any, a: Any, b: Any, d: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, widen(a), widen(b), d, *args, **kwargs)

    create_dot._ksearch_patched = True  # type: ignore[attr-defined]
    builder.create_dot = create_dot
    return True
