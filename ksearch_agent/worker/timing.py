"""Timing on the GPU the judge owns, and the device's measured ceilings.

Flushed protocol (ours): before each timed call, fresh input values are written and the L2 is
flushed by writing a buffer twice its size, all outside the timed region; CUDA events bracket the
call, and a device-wide synchronize comes *before* the end event, so work a candidate hides on side
streams is counted. The fixed cost of that synchronize is measured with an empty call and
subtracted (reported as ``sync_overhead_ms``). Median and IQR over the timed calls.

Launch overlap (a task's ``launch_overlap_us``): a spin kernel of that length is queued after the
synchronize and before the start event, so the call's host-side launch work overlaps GPU work instead
of starting on an idle GPU. Without it a microsecond kernel's time is mostly its caller's Python path
(FlashInfer's wrapper alone adds ~0.1 ms); with it the figure is the call's GPU time, as FlashInfer's
and Triton's benchmarks report it, plus whatever host work outlasts the spin. Every side of a
comparison gets the same spin, the empty calls that measure the fixed cost included.

Launch gate (a task's ``launch_gate_us``, instead of the spin): GPU work that fills every SM and holds until the
call has returned (at most that long), so none of the call's host work reaches the figure
(:mod:`ksearch_agent.worker.gate`). Every side gets it, the empty calls included, except the judge's calls that
synchronize inside themselves (``gated=False``: the reference, the library with its ``plan()``), which keep the
spin and their own empty calls.

Hot protocol (a reference figure beside the flushed one, as FlashInfer's benchmarks report "hot L2"): as
flushed, without the flush and on the same inputs every call, which are written once, so the L2 holds what
the previous call left there.

GPUMode protocol (for comparison with published numbers): the same inputs every call, events around
the call, no flush, synchronize after the end event, mean over up to 100 calls.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ksearch_agent.worker.gate import Gate


def _quantile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Timer:
    """The judge's timing tools on one device: a reusable L2-flush buffer, one timed call in either
    protocol, and the fixed cost of the flushed protocol's synchronize. The interleaving of the
    reference with the contestants' calls lives in :mod:`ksearch_agent.worker.profile_job`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        props = torch.cuda.get_device_properties(device)
        self.l2_bytes = int(getattr(props, "L2_cache_size", 50 * 1024 * 1024))
        self.flush_buffer = torch.empty(2 * self.l2_bytes, dtype=torch.uint8, device=device)
        self.lead_us = 0.0
        self.gate_us = 0.0
        self._gate: Gate | None = None
        self._cycles_per_us: float | None = None
        self._overhead_ms: dict[tuple[float, float], float] = {}

    def lead_cycles(self) -> int:
        """Spin-kernel cycles worth ``lead_us`` on this device (its spin rate is measured once)."""
        if self.lead_us <= 0:
            return 0
        if self._cycles_per_us is None:
            self._cycles_per_us = spin_cycles_per_us()
        return int(self.lead_us * self._cycles_per_us)

    def gate(self) -> Gate | None:
        """The launch gate when ``gate_us`` asks for one (made on first use), else None."""
        if self.gate_us <= 0:
            return None
        if self._gate is None:
            self._gate = Gate(self.device)
        return self._gate

    def flush(self) -> None:
        """Evict the L2 by writing twice its size (the caller synchronizes before timing)."""
        self.flush_buffer.zero_()

    def call_ms(
        self, fn: Callable[..., Any], args: Sequence[Any], *, protocol: str = "flushed", gated: bool = True
    ) -> float:
        """One timed call of ``fn(*args)``. Flushed: the L2 is flushed first and a device-wide synchronize
        comes before the end event; hot: the same without the flush; GPUMode: no flush, end event then
        synchronize. ``gated=False`` keeps the spin where the task asks for a gate (for calls that synchronize
        with the device inside themselves, which would wait on the gate)."""
        if protocol == "flushed":
            self.flush()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        gate = self.gate() if gated and protocol != "gpumode" else None
        if gate is not None:
            gate.close(self.gate_us)
        elif protocol != "gpumode" and (lead := self.lead_cycles()):
            torch.cuda._sleep(lead)
        start.record()
        try:
            out = fn(*args)
        finally:
            if gate is not None:
                gate.open()
        if protocol == "gpumode":
            end.record()
            torch.cuda.synchronize()
        else:
            torch.cuda.synchronize()
            end.record()
        end.synchronize()
        del out
        return float(start.elapsed_time(end))

    def sync_overhead_ms(self, gated: bool = True) -> float:
        """The flushed protocol's fixed cost at the current launch overlap or gate (an empty call's time)."""
        key = (self.lead_us, self.gate_us if gated else 0.0)
        if key not in self._overhead_ms:
            samples = [self.call_ms(lambda: None, [], gated=gated) for _ in range(60)]
            self._overhead_ms[key] = statistics.median(samples[10:])
        return self._overhead_ms[key]

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


def spin_cycles_per_us() -> float:
    """How many cycles of ``torch.cuda._sleep`` take a microsecond on the current device."""
    torch.cuda._sleep(1000)
    cycles = 4_000_000
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return cycles / (start.elapsed_time(end) * 1e3)


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
