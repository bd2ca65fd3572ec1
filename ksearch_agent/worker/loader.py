"""Loading candidate and reference modules from files, and adapting their entry points.

Candidates define ``run(<inputs in definition order>)``; GPUMode submissions define
``custom_kernel(data)`` with ``data = (input, mask, weights, config)``, adapted here from the task's
``gpumode`` mapping.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

_counter = itertools.count()

COMPILE_ERROR_TYPES = (
    "CompilationError",
    "CudaCompileError",
    "NVRTCError",
    "SyntaxError",
    "IndentationError",
    "TabError",
    "PTXASError",
    "MLIRCompilationError",
)
FATAL_CUDA_MARKERS = (
    "illegal memory access",
    "unspecified launch failure",
    "device-side assert",
    "misaligned address",
    "illegal instruction",
    "an illegal",
    "CUDA_ERROR_LAUNCH",
    "cudaErrorLaunch",
    "hardware stack error",
    "uncorrectable ECC",
)


def load_module(path: Path, prefix: str = "ksearch_candidate") -> ModuleType:
    """Execute a Python file as a fresh module (a unique name each time, so nothing is reused)."""
    name = f"{prefix}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def entry_point(
    module: ModuleType, api: str, task: dict[str, Any], axes: dict[str, int]
) -> Callable[..., Any]:
    """The callable taking the definition's inputs in order, whatever the file's convention.

    ``axes`` are the workload's axis values, which a GPUMode submission receives as ``config``.
    """
    if api == "run":
        fn = getattr(module, "run", None)
        if not callable(fn):
            raise AttributeError("the candidate does not define run(...)")
        return with_scalars(fn, task, axes)
    if api == "gpumode":
        kernel = getattr(module, "custom_kernel", None)
        adapter = task.get("gpumode")
        if not callable(kernel):
            raise AttributeError("the candidate does not define custom_kernel(data)")
        if adapter is None:
            raise AttributeError(f"task {task['name']!r} has no GPUMode adapter; define run(...) instead")
        index = {name: i for i, name in enumerate(task["input_names"])}
        # Name matching is done once here, not in the timed call: GPUMode's harness builds ``data``
        # before timing custom_kernel(data).  Each call still gets new dicts, so nothing a candidate
        # stores in them survives into the next call.
        positional = [index[n] for n in adapter["positional"]]
        weights = [(k, index[v]) for k, v in adapter["weights"].items()]
        config = {k: axes[v] for k, v in adapter["config"].items()}

        def call(*inputs: Any) -> Any:
            if len(inputs) != len(index):
                raise ValueError(f"expected {len(index)} inputs ({', '.join(index)}), got {len(inputs)}")
            return kernel(
                (*(inputs[i] for i in positional), {k: inputs[i] for k, i in weights}, dict(config))
            )

        return call
    raise ValueError(f"unknown entry-point convention {api!r}")


def with_scalars(fn: Callable[..., Any], task: dict[str, Any], axes: dict[str, Any]) -> Callable[..., Any]:
    """``fn`` taking the tensor inputs only, with the task's scalar inputs (plain Python numbers, per
    workload, carried in ``axes`` under their names) put back at their places in the definition's order."""
    scalars = task.get("scalar_inputs") or []
    if not scalars:
        return fn
    order = task["call_order"]
    missing = [n for n in scalars if n not in axes]
    if missing:
        raise ValueError(f"the workload gives no value for the scalar inputs {missing}")
    base = [axes[n] if n in scalars else None for n in order]
    tensor_slots = [i for i, n in enumerate(order) if n not in scalars]

    def call(*tensors: Any) -> Any:
        if len(tensors) != len(tensor_slots):
            raise TypeError(f"expected {len(tensor_slots)} tensor inputs, got {len(tensors)}")
        args = list(base)
        for i, t in zip(tensor_slots, tensors, strict=True):
            args[i] = t
        return fn(*args)

    return call


def classify_exception(exc: BaseException) -> tuple[str, bool]:
    """(status, fatal): fatal means the CUDA context is unusable and the worker must be replaced."""
    names = {t.__name__ for t in type(exc).__mro__}
    if names & set(COMPILE_ERROR_TYPES):
        return "COMPILE_ERROR", False
    text = f"{type(exc).__name__}: {exc}"
    fatal = any(marker.lower() in text.lower() for marker in FATAL_CUDA_MARKERS)
    return "RUNTIME_ERROR", fatal


def short_traceback(exc: BaseException, limit_chars: int = 3000) -> str:
    """The exception and the innermost frames, which is what a repair step needs."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text if len(text) <= limit_chars else "...\n" + text[-limit_chars:]
