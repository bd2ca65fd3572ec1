"""What a candidate call really does: the PyTorch ops it dispatches and the kernels it launches.

A Triton or CUDA candidate is there to run its own kernels. One that hides PyTorch compute behind
indirection (``getattr(torch, "mat" + "mul")``, ``torch.ops.aten.mm.default``, ``x.__matmul__``, an
``nn.Linear``) or launches nothing at all (a cached result) gets past a source screen but not this:

* ops: a ``TorchDispatchMode`` sees every ATen op dispatched on the calling thread during the call,
  after PyTorch's Python-level indirection has been resolved, and counts it by overload name
  (``aten.mm.default``). Ops that only allocate, view, copy or read metadata are allowed; every
  other op (any namespace, custom ops included) is compute.
* launches: one process-wide counter fed by Triton's JIT launch hook
  (``triton.knobs.runtime.launch_enter_hook``, or the older attribute forms), the Triton interpreter's
  grid executor (``TRITON_INTERPRET=1``), :mod:`ksearch_agent.cuda_launch` and ``cuda.core``'s
  ``launch``. A call's launches are the counter's difference across the call.

Everything here runs inside the contestant's process, so a hostile candidate can pop the mode,
patch the counter or launch through a path we do not hook: this is one signal among several (the
source screen, threads and streams in :mod:`ksearch_agent.worker.watch`, CUPTI on the GPU), never
proof. The hooks are installed once per process; Triton's JIT launch hook (3.5+) is joined only while a
counted call runs (correctness calls), since a set hook taxes every launch and makes code that launches
through compiled kernels' C launchers (the TriMul dispatch seed) take the JIT path. Timed calls are not
counted: a candidate can tell a counted call from a timed one (the dispatch mode is visible while
pushed), which is why the judge also checks sampled timed outputs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# ATen ops (by overload packet, all overloads) that allocate, view, copy, convert or read metadata.
# None computes a value from the values of its inputs (a dtype conversion in _to_copy/copy_ aside).
ALLOWED_OPS: frozenset[str] = frozenset(
    {
        # allocation and constant fill
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "zeros",
        "zeros_like",
        "new_zeros",
        "ones",
        "ones_like",
        "new_ones",
        "full",
        "full_like",
        "new_full",
        "fill_",
        "zero_",
        # views
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "as_strided",
        "permute",
        "transpose",
        "t",
        "expand",
        "unsqueeze",
        "squeeze",
        "select",
        "slice",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "narrow",
        "alias",
        "detach",
        "lift_fresh",
        # copies, concatenation and dtype/device conversion
        "copy_",
        "clone",
        "_to_copy",
        "contiguous",
        "lift_fresh_copy",
        "cat",
        "stack",
        # metadata, scalar reads, storage plumbing (the Triton interpreter uses set_ to move arguments)
        "_local_scalar_dense",
        "resize_",
        "set_",
    }
)

LANGUAGES_WITH_OWN_KERNELS = ("triton", "cuda")
_MAX_NAMED_OPS = 6


@dataclass
class CallRecord:
    """What one watched call did; filled in when the ``watch`` block exits."""

    compute_ops: dict[str, int] = field(default_factory=dict)  # op name -> count, not in ALLOWED_OPS
    allowed_ops: dict[str, int] = field(default_factory=dict)
    launches: int = 0  # candidate kernel launches seen during the call
    anomalies: list[str] = field(default_factory=list)  # signs the monitor itself was tampered with


def op_is_allowed(op: Any) -> bool:
    """Whether a dispatched op only allocates, views, copies or reads metadata."""
    return getattr(op, "namespace", None) == "aten" and getattr(op, "_opname", None) in ALLOWED_OPS


class _Counter:
    """Process-wide launch counter; the hooks only ever add to it (a few attribute reads per launch)."""

    launches = 0
    # Set by the cuda_launch hook just before it calls cuda.core's launch: that launch is already counted.
    skip_core_launch = False


def _count_launch(*_args: Any, **_kwargs: Any) -> None:
    _Counter.launches += 1


def _count_cuda_launch(_name: str) -> None:
    _Counter.launches += 1
    _Counter.skip_core_launch = True


class _OpCounter(TorchDispatchMode):
    """Counts every op dispatched while pushed, by op object (names are made once, at the end)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode wraps a subclass's __torch_dispatch__ in torch._disable_dynamo, whose first
        # call imports torch._dynamo: 3-6 s inside the first counted call of every contestant. Eager ops
        # dispatch through the mode either way; only Dynamo tracing into this method would differ, and a
        # candidate that compiles PyTorch code is PyTorch compute, which the op count and the screen refuse.
        return False

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[Any, int] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        counts = self.counts
        counts[func] = counts.get(func, 0) + 1
        return func(*args, **(kwargs or {}))


_INSTALLED: dict[str, bool] = {}
# Triton's launch-enter HookChain (3.5+). Our counter joins it only for the duration of a counted call:
# a Triton launch hook makes Triton's launcher call back into Python on every launch, and code that
# launches through compiled kernels' C launchers directly (our TriMul dispatch seed) falls back to the
# slower JIT path whenever a hook is set, so a permanent hook would tax every timed call.
_JIT_CHAIN: list[Any] = []


def _install_triton_jit_hook() -> bool:
    """Chain our counter into Triton's launch-enter hook, whichever form this Triton has.

    3.5 and later: ``knobs.runtime.launch_enter_hook`` is a ``HookChain`` (``add``/``calls``); 3.4: the
    same knob holds one callable or None; 3.3 and earlier: ``CompiledKernel.launch_enter_hook``. An
    existing hook keeps running after ours.
    """
    try:
        import triton
    except ImportError:
        return False
    runtime = getattr(getattr(triton, "knobs", None), "runtime", None)
    if runtime is not None and hasattr(runtime, "launch_enter_hook"):
        hook = runtime.launch_enter_hook
        if hasattr(hook, "add") and hasattr(hook, "calls"):
            _JIT_CHAIN.append(hook)  # joined only while a counted call runs: see CallMonitor.watch
        else:
            runtime.launch_enter_hook = _chained(hook)
        return True
    try:
        from triton.compiler.compiler import CompiledKernel
    except ImportError:
        return False
    if not hasattr(CompiledKernel, "launch_enter_hook"):
        return False
    CompiledKernel.launch_enter_hook = _chained(CompiledKernel.launch_enter_hook)
    return True


def _chained(previous: Callable[..., Any] | None) -> Callable[..., Any]:
    def counting_enter_hook(*args: Any, **kwargs: Any) -> Any:
        _Counter.launches += 1
        if previous is not None:
            return previous(*args, **kwargs)
        return None

    return counting_enter_hook


def _install_interpreter_hook() -> bool:
    """Count each grid the Triton interpreter runs (``GridExecutor.__call__``: one launch = one grid)."""
    try:
        from triton.runtime import interpreter
    except ImportError:
        return False
    executor = getattr(interpreter, "GridExecutor", None)
    if executor is None or not callable(getattr(executor, "__call__", None)):  # noqa: B004 - a class attribute
        return False
    original = executor.__call__
    if getattr(original, "_ksearch_counting", False):
        return True

    @functools.wraps(original)
    def counting_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        _Counter.launches += 1
        return original(self, *args, **kwargs)

    counting_call._ksearch_counting = True  # type: ignore[attr-defined]
    executor.__call__ = counting_call
    return True


def _install_cuda_launch_hook() -> bool:
    from ksearch_agent import cuda_launch

    cuda_launch.launch_hook = _count_cuda_launch
    return True


def _install_cuda_core_hook() -> bool:
    """Wrap ``launch`` in ``cuda.core`` (and ``cuda.core.experimental`` where it exists) and the module
    that defines it, so ``from cuda.core import launch`` after this point gets the counting one."""
    try:
        import cuda.core as core
    except Exception:  # noqa: BLE001 - a missing or broken cuda-python is only a missing hook
        return False
    modules: list[Any] = [core]
    try:
        import cuda.core.experimental as experimental

        modules.append(experimental)
    except Exception:  # noqa: BLE001 - absent in cuda-core >= 0.4's layout
        pass
    original = getattr(core, "launch", None)
    if original is None or getattr(original, "_ksearch_counting", False):
        return original is not None
    defining = sys.modules.get(getattr(original, "__module__", "") or "")
    if defining is not None:
        modules.append(defining)

    @functools.wraps(original)
    def counting_launch(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if _Counter.skip_core_launch:
            _Counter.skip_core_launch = False
        else:
            _Counter.launches += 1
        return result

    counting_launch._ksearch_counting = True  # type: ignore[attr-defined]
    for module in modules:
        if getattr(module, "launch", None) is original:
            try:
                module.launch = counting_launch
            except (AttributeError, TypeError):
                continue
    return True


def install_hooks() -> dict[str, bool]:
    """Install every launch hook once per process; returns which ones took (by name)."""
    if not _INSTALLED:
        _INSTALLED.update(
            {
                "triton_jit": _install_triton_jit_hook(),
                "triton_interpreter": _install_interpreter_hook(),
                "cuda_launch": _install_cuda_launch_hook(),
                "cuda_core": _install_cuda_core_hook(),
            }
        )
    return dict(_INSTALLED)


def launches_so_far() -> int:
    """The process-wide launch count (for callers that diff it themselves)."""
    return _Counter.launches


class CallMonitor:
    """Watches candidate calls. Construct it before the candidate is imported (the hooks must be in
    place first); constructing more than one is cheap and shares the hooks."""

    def __init__(self) -> None:
        self.hooks = install_hooks()

    @contextmanager
    def watch(self, *, ops: bool = True) -> Iterator[CallRecord]:
        """Count what happens inside the block; the record is complete once the block exits.

        ``ops=False`` counts launches only (no dispatch mode, so no per-op cost: for timed calls).
        """
        record = CallRecord()
        _Counter.skip_core_launch = False
        start = _Counter.launches
        if not ops:
            try:
                yield record
            finally:
                record.launches = _Counter.launches - start
            return
        depth = torch._C._len_torch_dispatch_stack()
        for chain in _JIT_CHAIN:
            chain.add(_count_launch)
        mode = _OpCounter()
        mode.__enter__()
        try:
            yield record
        finally:
            for chain in _JIT_CHAIN:
                chain.remove(_count_launch)
            record.launches = _Counter.launches - start
            _leave(mode, depth, record)
            for op, n in mode.counts.items():
                bucket = record.allowed_ops if op_is_allowed(op) else record.compute_ops
                name = str(op)
                bucket[name] = bucket.get(name, 0) + n


def _leave(mode: _OpCounter, depth: int, record: CallRecord) -> None:
    """Pop our mode; if the call changed the dispatch-mode stack, restore it and say so."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode, _pop_mode

    if torch._C._len_torch_dispatch_stack() == depth + 1 and _get_current_dispatch_mode() is mode:
        mode.__exit__(None, None, None)
        return
    record.anomalies.append(
        "the call changed PyTorch's dispatch-mode stack (the op counter was moved or "
        "another mode was left pushed)"
    )
    while torch._C._len_torch_dispatch_stack() > depth:
        _pop_mode()


def _format_ops(ops: dict[str, int]) -> str:
    ranked = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    named = ", ".join(f"{name} x{n}" for name, n in ranked[:_MAX_NAMED_OPS])
    if len(ranked) > _MAX_NAMED_OPS:
        named += f", and {len(ranked) - _MAX_NAMED_OPS} more op(s)"
    return named


def call_problems(record: CallRecord, language: str) -> list[str]:
    """Reasons to refuse a call, each starting with its rule tag; empty when there are none.

    Op and launch rules apply to Triton and CUDA candidates only (a Python candidate may compute with
    PyTorch); signs of tampering with the monitor apply to every language.
    """
    problems = [f"[monitor] {a}" for a in record.anomalies]
    if language not in LANGUAGES_WITH_OWN_KERNELS:
        return problems
    if record.compute_ops:
        problems.append(f"[op-count] the call computed with PyTorch: {_format_ops(record.compute_ops)}")
    if record.launches <= 0:
        problems.append("[no-launch] the call launched no kernel of its own (Triton or CUDA)")
    return problems
