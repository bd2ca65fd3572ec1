"""How much of a TriMul kernel's GPUMode time is host (Python launch) time, per benchmark shape.

For each benchmark workload of ``trimul`` and each kernel file given, four figures from one process:

- ``gpumode_ms``: GPUMode's protocol (synchronize, event, call, event, synchronize; mean), which counts
  host time whenever the GPU waits for the next launch;
- ``gpu_only_ms``: the same call queued behind a long ``torch.cuda._sleep``, so every launch is issued
  before the GPU reaches it: the kernels' own time;
- ``graph_ms``: the call captured once into a CUDA graph here, in this script, and replayed in
  GPUMode's protocol: what the same kernels cost with launches that cost the host almost nothing
  (an experiment of the benchmark, not something a candidate may do: the engine's screen refuses
  pointer-keyed replays and side streams);
- ``host_us``: host time of one call while the GPU is busy.

Usage (GPU machine, package installed): ``python evals/trimul_host_overhead.py OUTDIR KERNEL.py [...]``;
prints a table and writes ``OUTDIR/trimul_host_overhead.json``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from device_info import gpu_and_date

from ksearch_agent.candidate import detect_api
from ksearch_agent.results import geomean
from ksearch_agent.task import load_task
from ksearch_agent.worker.inputs import make_inputs
from ksearch_agent.worker.session import load_entry

SLEEP_CYCLES = 20_000_000  # about 10 ms of GPU time: longer than any call's host time


def _events(fn: Callable[[], Any], reps: int, *, behind_sleep: bool) -> float:
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        if behind_sleep:
            torch.cuda._sleep(SLEEP_CYCLES)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sum(times) / len(times)


def _host_us(fn: Callable[[], Any], reps: int) -> float:
    torch.cuda.synchronize()
    torch.cuda._sleep(SLEEP_CYCLES * 10)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    dt = (time.perf_counter() - t0) / reps * 1e6
    torch.cuda.synchronize()
    return dt


def _bound(entry: Callable[..., Any], inputs: list[torch.Tensor]) -> Callable[[], Any]:
    return lambda: entry(*inputs)


def measure(kernel: Path, reps: int = 30) -> dict[str, Any]:
    task = load_task("trimul")
    spec = task.worker_spec()
    rows: dict[str, Any] = {}
    api = detect_api(kernel.read_text())
    for wl in task.select(role="benchmark"):
        w = task.resolve(wl)
        loaded = load_entry(str(kernel), api, spec, "candidate", w["axes"])
        if loaded.failure is not None:
            raise SystemExit(f"{kernel}: {loaded.failure.log}")
        call = _bound(loaded.bind(w["axes"]), make_inputs(w["inputs"], 1234, torch.device("cuda")))
        for _ in range(3):
            call()
        row = {
            "gpumode_ms": _events(call, reps, behind_sleep=False),
            "gpu_only_ms": _events(call, reps, behind_sleep=True),
            "host_us": _host_us(call, reps),
        }
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            call()
        row["graph_ms"] = _events(graph.replay, reps, behind_sleep=False)
        rows[wl.id] = row
        del graph, call
        torch.cuda.empty_cache()
    geo = {k: geomean([r[k] for r in rows.values()]) for k in ("gpumode_ms", "gpu_only_ms", "graph_ms")}
    return {"kernel": str(kernel), "workloads": rows, "geomean": geo}


def main(out: Path, kernels: list[Path]) -> dict[str, Any]:
    import triton

    info = gpu_and_date()
    record: dict[str, Any] = {
        "date": info["date"],
        "torch": torch.__version__,
        "triton": triton.__version__,
        "gpu": info["gpu"],
        "command": "python evals/trimul_host_overhead.py OUTDIR " + " ".join(k.name for k in kernels),
        "kernels": [measure(k) for k in kernels],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "trimul_host_overhead.json").write_text(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit("usage: python evals/trimul_host_overhead.py OUTDIR KERNEL.py [KERNEL.py ...]")
    rec = main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
    print(f"{rec['gpu']}; torch {rec['torch']}, triton {rec['triton']}; {rec['date']}")
    for k in rec["kernels"]:
        print(f"\n{k['kernel']}")
        print(f"{'workload':38s} {'gpumode ms':>10s} {'gpu-only ms':>11s} {'graph ms':>9s} {'host us':>8s}")
        for name, r in k["workloads"].items():
            print(
                f"{name[:38]:38s} {r['gpumode_ms']:10.4f} {r['gpu_only_ms']:11.4f} {r['graph_ms']:9.4f} "
                f"{r['host_us']:8.0f}"
            )
        g = k["geomean"]
        print(f"{'geomean':38s} {g['gpumode_ms']:10.4f} {g['gpu_only_ms']:11.4f} {g['graph_ms']:9.4f}")
