"""Timing on the GPU the worker owns, and the device's measured ceilings.

Flushed protocol (ours): before each timed call, fresh clones of the inputs are made and the L2 is
flushed by writing a buffer twice its size, all outside the timed region; CUDA events bracket the
call, and a device-wide synchronize comes *before* the end event, so work a candidate hides on side
streams is counted. The fixed cost of that synchronize is measured with an empty call and
subtracted (reported as ``sync_overhead_ms``). Median and IQR over the timed calls.

GPUMode protocol (for comparison with published numbers): the same inputs every call, events around
the call, no flush, synchronize after the end event, mean over up to 100 calls.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

Inputs = Sequence[torch.Tensor] | Callable[[], Sequence[torch.Tensor]]


def _quantile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Timer:
    """Times callables on one device with a reusable L2-flush buffer and event pairs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        props = torch.cuda.get_device_properties(device)
        self.l2_bytes = int(getattr(props, "L2_cache_size", 50 * 1024 * 1024))
        self.flush_buffer = torch.empty(2 * self.l2_bytes, dtype=torch.uint8, device=device)
        self._overhead_ms: float | None = None

    def _one_flushed(self, fn: Callable[..., Any], inputs: Inputs) -> float:
        # Fresh inputs for every timed call (new values, new buffers): nothing a candidate cached from an
        # earlier call can be replayed. A plain list is cloned instead.
        args = list(inputs()) if callable(inputs) else [t.clone() for t in inputs]
        self.flush_buffer.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        out = fn(*args)
        torch.cuda.synchronize()
        end.record()
        end.synchronize()
        del out, args
        return float(start.elapsed_time(end))

    def sync_overhead_ms(self) -> float:
        if self._overhead_ms is None:
            samples = [self._one_flushed(lambda: None, []) for _ in range(60)]
            self._overhead_ms = statistics.median(samples[10:])
        return self._overhead_ms

    def warm_up(self, fn: Callable[..., Any], inputs: Inputs, *, min_calls: int = 3,
                min_ms: float = 150.0) -> float:
        """Run until both ``min_calls`` calls and ``min_ms`` of GPU time have passed, so clocks have ramped
        and JIT compilation is done; returns the last call's time."""
        spent, calls, last = 0.0, 0, 0.0
        while calls < min_calls or spent < min_ms:
            last = self._one_flushed(fn, inputs)
            spent += last
            calls += 1
            if calls >= 1000:
                break
        return last

    def flushed(self, fn: Callable[..., Any], inputs: Inputs, *, budget_ms: float = 500.0,
                min_iters: int = 10, max_iters: int = 200) -> dict[str, Any]:
        with torch.no_grad():
            probe = self.warm_up(fn, inputs)
            iters = int(max(min_iters, min(max_iters, budget_ms / max(probe, 1e-3))))
            samples = [self._one_flushed(fn, inputs) for _ in range(iters)]
        overhead = self.sync_overhead_ms()
        return self._stats([max(s - overhead, 0.0) for s in samples], overhead)

    def interleaved(self, fns: dict[str, Callable[..., Any]], inputs: Inputs, *,
                    budget_ms: float = 500.0, min_iters: int = 10, max_iters: int = 200) -> dict[str, dict[str, Any]]:
        """Time several callables in alternation (A B A B ...), so clock and thermal drift hit all of them
        alike and their ratios stay honest; returns per-name statistics as :meth:`flushed` does."""
        samples: dict[str, list[float]] = {name: [] for name in fns}
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with torch.no_grad():
                probes = {name: self.warm_up(fn, inputs) for name, fn in fns.items()}
                iters = int(max(min_iters, min(max_iters, budget_ms / max(max(probes.values()), 1e-3))))
                for _ in range(iters):
                    for name, fn in fns.items():
                        samples[name].append(self._one_flushed(fn, inputs))
        finally:
            if gc_was_enabled:
                gc.enable()
        overhead = self.sync_overhead_ms()
        return {name: self._stats([max(s - overhead, 0.0) for s in vals], overhead) for name, vals in samples.items()}

    @staticmethod
    def _stats(net: list[float], overhead: float) -> dict[str, Any]:
        return {
            "protocol": "flushed",
            "median_ms": statistics.median(net),
            "q25_ms": _quantile(net, 0.25),
            "q75_ms": _quantile(net, 0.75),
            "iqr_ms": _quantile(net, 0.75) - _quantile(net, 0.25),
            "mean_ms": statistics.fmean(net),
            "iters": len(net),
            "sync_overhead_ms": overhead,
        }

    def gpumode(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor], *, max_iters: int = 100,
                max_seconds: float = 10.0) -> dict[str, Any]:
        durations: list[float] = []
        t_start = time.perf_counter()
        with torch.no_grad():
            fn(*inputs)
            torch.cuda.synchronize()
            for i in range(max_iters):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                start.record()
                out = fn(*inputs)
                end.record()
                torch.cuda.synchronize()
                del out
                durations.append(float(start.elapsed_time(end)))
                if i > 1:
                    mean = statistics.fmean(durations)
                    stderr = statistics.stdev(durations) / len(durations) ** 0.5
                    if stderr / mean < 0.001 or time.perf_counter() - t_start > max_seconds:
                        break
        return {"protocol": "gpumode", "mean_ms": statistics.fmean(durations),
                "median_ms": statistics.median(durations), "iters": len(durations),
                "iqr_ms": _quantile(durations, 0.75) - _quantile(durations, 0.25)}


def measure_ceilings(device: torch.device) -> dict[str, Any]:
    """Copy bandwidth and bf16 / fp32 GEMM rates of this device, measured with PyTorch."""

    def best_ms(fn: Callable[[], Any], reps: int = 10) -> float:
        fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return statistics.median(times)

    def copy_ms(n_bytes: int) -> float:
        src = torch.empty(n_bytes, dtype=torch.uint8, device=device).random_()
        dst = torch.empty_like(src)
        return best_ms(lambda: dst.copy_(src))

    def gemm_ms(n: int, dtype: torch.dtype, reps: int) -> float:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        return best_ms(lambda: a @ b, reps=reps)

    n_bytes, n = 1 << 30, 8192
    copy = copy_ms(n_bytes)
    bf16_ms = gemm_ms(n, torch.bfloat16, 10)
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        fp32_ms = gemm_ms(n, torch.float32, 5)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    torch.cuda.empty_cache()
    return {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "copy_gbps": 2 * n_bytes / copy / 1e6,
        "bf16_tflops": 2 * n**3 / bf16_ms / 1e9,
        "fp32_tflops": 2 * n**3 / fp32_ms / 1e9,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def cached_ceilings(device: torch.device, cache_file: str | None) -> dict[str, Any]:
    """Ceilings measured once per (device, torch version) and kept in ``cache_file``."""
    key = f"{torch.cuda.get_device_name(device)}|{torch.__version__}"
    cache: dict[str, Any] = {}
    if cache_file and Path(cache_file).is_file():
        try:
            cache = json.loads(Path(cache_file).read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    if key not in cache:
        cache[key] = measure_ceilings(device)
        if cache_file:
            Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
            Path(cache_file).write_text(json.dumps(cache, indent=1))
    return dict(cache[key])
