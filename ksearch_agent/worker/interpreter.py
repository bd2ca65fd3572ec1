"""Making the Triton CPU interpreter honest: exact bf16 ``tl.dot``, shuffled program order, poisoned memory.

The interpreter keeps bf16 values as raw 16-bit integers and multiplies those with numpy, so a bf16
``tl.dot`` returns garbage. We widen bf16 operands to fp32 first (exact: bf16 is the top half of an
fp32), so a correct kernel is never failed and a wrong one never passed because of the interpreter.

It also runs a grid's programs in order and hands out CPU memory that is often zero, which hides
kernels whose programs depend on each other and outputs a kernel never writes; the contestant turns
on :func:`shuffle_program_order` (in one trial) and :func:`poison_cpu_allocations` for that.
"""

from __future__ import annotations

import inspect
import math
import random
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


# -- shuffled program order ------------------------------------------------------------------------
#
# The interpreter runs a grid's programs one after another in order (``GridExecutor.__call__`` loops
# over x, y, z and calls ``interpreter_builder.set_grid_idx(x, y, z)`` before each program). A kernel
# whose program 1 reads what program 0 wrote passes that way, yet races on a GPU. We leave the loop
# alone and remap the index it sets: ``set_grid_dim`` draws a permutation of the launch's programs and
# ``set_grid_idx`` turns the loop's n-th visit into the permutation's n-th program. Every program still
# runs exactly once, only the order changes, whatever order the loop itself visits in.

_LIST_PERMUTATION_LIMIT = 1 << 20
"""Grids up to this many programs get a shuffled order (never the in-order one); larger ones (which the
interpreter could not finish anyway) a random affine bijection, so no launch allocates a huge list."""


class _ProgramOrder:
    """Which program the loop's n-th visit of the current launch runs; identity while not shuffling."""

    def __init__(self) -> None:
        self.rng: random.Random | None = None
        self.dims: tuple[int, int, int] = (1, 1, 1)
        self.perm: list[int] | None = None
        self.affine: tuple[int, int] | None = None

    def new_launch(self, dims: tuple[int, int, int]) -> None:
        self.dims, self.perm, self.affine = dims, None, None
        if self.rng is None:
            return
        n = dims[0] * dims[1] * dims[2]
        if n <= _LIST_PERMUTATION_LIMIT:
            self.perm = list(range(n))
            self.rng.shuffle(self.perm)
            if n > 1 and all(p == i for i, p in enumerate(self.perm)):
                self.perm.reverse()  # never the in-order run: a two-program grid is always caught
        else:
            a = self.rng.randrange(1, n)
            while math.gcd(a, n) != 1:
                a = self.rng.randrange(1, n)
            self.affine = (a, self.rng.randrange(n))

    def program(self, x: int, y: int, z: int) -> tuple[int, int, int]:
        if self.perm is None and self.affine is None:
            return x, y, z
        _, ny, nz = self.dims
        k = (x * ny + y) * nz + z
        if not 0 <= y < ny or not 0 <= z < nz or not 0 <= k < ny * nz * self.dims[0]:
            return x, y, z  # out of range: let the interpreter's own check report it
        if self.perm is not None:
            k = self.perm[k]
        elif self.affine is not None:
            a, b = self.affine
            k = (a * k + b) % (self.dims[0] * ny * nz)
        return k // (ny * nz), (k // nz) % ny, k % nz


_ORDER = _ProgramOrder()


def _install_program_order() -> bool:
    """Wrap ``InterpreterBuilder.set_grid_dim``/``set_grid_idx`` once; False if they are not there."""
    try:
        from triton.runtime import interpreter as interp
    except ImportError:
        return False
    builder = getattr(interp, "InterpreterBuilder", None)
    set_dim, set_idx = getattr(builder, "set_grid_dim", None), getattr(builder, "set_grid_idx", None)
    if builder is None or not callable(set_dim) or not callable(set_idx):
        return False
    try:
        if list(inspect.signature(set_dim).parameters) != ["self", "nx", "ny", "nz"] or list(
            inspect.signature(set_idx).parameters
        ) != ["self", "x", "y", "z"]:
            return False
    except (TypeError, ValueError):
        return False
    if getattr(set_idx, "_ksearch_patched", False):
        return True

    def set_grid_dim(self: Any, nx: int, ny: int, nz: int) -> None:
        set_dim(self, nx, ny, nz)
        _ORDER.new_launch((int(nx), int(ny), int(nz)))

    def set_grid_idx(self: Any, x: int, y: int, z: int) -> None:
        set_idx(self, *_ORDER.program(x, y, z))

    set_grid_idx._ksearch_patched = True  # type: ignore[attr-defined]
    builder.set_grid_dim = set_grid_dim
    builder.set_grid_idx = set_grid_idx
    return True


def shuffle_program_order(seed: int | None) -> bool:
    """Make the interpreter run each grid's programs in an order shuffled from ``seed`` (a fresh order
    per launch, reproducible for the same seed and launch sequence), or in order again when ``seed`` is
    None. Returns False, changing nothing, when this Triton's interpreter is not shaped as expected."""
    if seed is None:
        _ORDER.rng = None
        _ORDER.perm = _ORDER.affine = None
        return True
    if not _install_program_order():
        return False
    _ORDER.rng = random.Random(seed)
    return True


# -- poisoned CPU allocations ----------------------------------------------------------------------
#
# ``torch.empty`` and friends hand out whatever the allocator had, often zeros, so an output row a
# kernel never writes can still match the reference. With deterministic algorithms on and
# ``torch.utils.deterministic.fill_uninitialized_memory`` set, PyTorch fills every fresh allocation
# (CPU included): NaN for floating point and complex dtypes, the dtype's maximum for integers (True for
# bool). ``warn_only`` keeps ops that have no deterministic implementation working (a warning, not an
# error), so no correct candidate fails because of the poisoning.
#
# The flag is set through ``torch._C`` where it exists: ``torch.use_deterministic_algorithms`` also imports
# ``torch._inductor`` to set its ``deterministic`` option, which cost each CPU contestant about a second of
# start-up (more than importing torch itself) for a setting the interpreter never reads.

_SAVED_DETERMINISM: tuple[bool, bool, bool] | None = None


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without the private setter: the public one, import cost and all
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


def poison_cpu_allocations(enabled: bool) -> None:
    """Fill fresh tensors from ``torch.empty``/``empty_like``/``new_empty``/``empty_strided`` (and resizes)
    with NaN or the integer maximum while enabled; disabling restores the settings found on enabling."""
    global _SAVED_DETERMINISM
    import torch
    import torch.utils.deterministic as det

    if enabled:
        if _SAVED_DETERMINISM is None:
            _SAVED_DETERMINISM = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                bool(getattr(det, "fill_uninitialized_memory", False)),
            )
        _set_deterministic(True, warn_only=True)
        setattr(det, "fill_uninitialized_memory", True)  # noqa: B010 - a property of the module object (mypy cannot see it)
    elif _SAVED_DETERMINISM is not None:
        mode, warn_only, fill = _SAVED_DETERMINISM
        _set_deterministic(mode, warn_only=warn_only)
        setattr(det, "fill_uninitialized_memory", fill)  # noqa: B010
        _SAVED_DETERMINISM = None
