"""profile_h100 inside the GPU worker: candidate, reference and optional baseline timed side by side.

By default the reference (and a baseline) are timed in alternation with the candidate, call by call,
so clock and thermal drift cannot tilt the speedup. With ``reference_mode="cached"`` the reference is
timed once per worker lifetime per (task, workload, protocol) — cheaper for a long search.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from ksearch_agent.worker.inputs import derive_seed, make_inputs
from ksearch_agent.worker.session import context_is_healthy, failure_from, load_entry
from ksearch_agent.worker.timing import Timer, cached_ceilings


def _time_all(worker: Any, fns: dict[str, Any], wl: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
    """Statistics per callable; flushed-protocol callables are interleaved call by call, each call on
    freshly generated inputs (seeds derived from the request's secret and a call counter)."""
    if req.get("protocol", "flushed") == "gpumode":
        same = make_inputs(wl["inputs"], derive_seed(int(req["secret"]), wl["id"], "profile"), worker.device)
        out = {name: worker.timer.gpumode(fn, same) for name, fn in fns.items()}
        for stats in out.values():
            stats["latency_ms"] = stats["mean_ms"]
        return out
    counter = itertools.count()

    def fresh() -> list[torch.Tensor]:
        return make_inputs(wl["inputs"], derive_seed(int(req["secret"]), wl["id"], "call", next(counter)),
                           worker.device)

    out = worker.timer.interleaved(fns, fresh, budget_ms=float(req.get("budget_ms", 500.0)))
    for stats in out.values():
        stats["latency_ms"] = stats["median_ms"]
    return out


def _roofline(wl: dict[str, Any], latency_ms: float, ceilings: dict[str, Any], unit: str) -> dict[str, Any]:
    peak_tflops = ceilings["bf16_tflops"] if unit == "bf16_tensor_core" else ceilings["fp32_tflops"]
    floor_ms = max(wl["flops"] / (peak_tflops * 1e9), wl["bytes"] / (ceilings["copy_gbps"] * 1e6))
    seconds = latency_ms / 1e3
    return {
        "tflops": wl["flops"] / seconds / 1e12 if seconds > 0 else None,
        "gbps": wl["bytes"] / seconds / 1e9 if seconds > 0 else None,
        "floor_ms": floor_ms,
        "roofline_fraction": floor_ms / latency_ms if latency_ms > 0 else None,
        "plausible": latency_ms >= 0.9 * floor_ms,
    }


def run_profile(worker: Any, req: dict[str, Any]) -> None:
    if worker.mode != "gpu":
        worker.emit({"type": "done", "error": "profiling needs a GPU worker; speed was not measured"})
        return
    task, workloads = req["task"], req["workloads"]
    if worker.timer is None:
        worker.timer = Timer(worker.device)
    ceilings = cached_ceilings(worker.device, req.get("ceilings_file"))
    axes0 = workloads[0]["axes"] if workloads else {}
    ref = load_entry(task["reference"], "run", task, "reference", axes0)
    cand = load_entry(req["candidate"]["path"], req["candidate"]["api"], task, "candidate", axes0)
    base = None
    if req.get("baseline"):
        base = load_entry(req["baseline"]["path"], req["baseline"]["api"], task, "baseline", axes0)
    protocol = req.get("protocol", "flushed")
    for wl in workloads:
        result: dict[str, Any] = {"workload": wl["id"], "protocol": protocol}
        key = f"{task['name']}|{wl['id']}|{protocol}"
        fns: dict[str, Any] = {}
        if cand.failure is None:
            fns["candidate"] = cand.bind(wl["axes"])
        else:
            result.update(status=cand.failure.status, log=cand.failure.log)
        if ref.failure is None and (req.get("reference_mode", "interleaved") == "interleaved"
                                    or key not in worker.ref_times):
            fns["reference"] = ref.bind(wl["axes"])
        if base is not None and base.failure is None:
            fns["baseline"] = base.bind(wl["axes"])
        stats: dict[str, Any] = {}
        before = worker.watch.snapshot()
        try:
            stats = _time_all(worker, fns, wl, req)
            if (problem := worker.watch.check(before)) is not None and "candidate" in fns:
                stats = {k: v for k, v in stats.items() if k != "candidate"}
                result.update(status="REJECTED", log=f"the candidate {problem}")
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            fail = failure_from(exc, "timing the candidate")
            result.update(status=fail.status, log=fail.log)
            fns.pop("candidate", None)
            if not context_is_healthy(worker.device):
                worker.fatal = True
            elif fns:  # the reference (and baseline) still get their numbers
                try:
                    stats = _time_all(worker, fns, wl, req)
                except Exception as exc2:  # noqa: BLE001
                    result["log"] += f"\nreference timing failed too: {exc2}"
        if "reference" in stats:
            worker.ref_times[key] = stats["reference"]
        if key in worker.ref_times:
            result["reference_latency_ms"] = worker.ref_times[key]["latency_ms"]
            result["reference_stats"] = worker.ref_times[key]
        if "candidate" in stats and result.get("status") != "REJECTED":
            c = stats["candidate"]
            result.update(status="PASSED", latency_ms=c["latency_ms"], iqr_ms=c["iqr_ms"], stats=c)
            result.update(_roofline(wl, c["latency_ms"], ceilings, task["compute_unit"]))
            if result.get("reference_latency_ms") and c["latency_ms"] > 0:
                result["speedup"] = result["reference_latency_ms"] / c["latency_ms"]
        if "baseline" in stats:
            result["baseline_latency_ms"] = stats["baseline"]["latency_ms"]
            if result.get("latency_ms"):
                result["speedup_vs_baseline"] = stats["baseline"]["latency_ms"] / result["latency_ms"]
        worker.emit({"type": "workload", "result": result})
        if worker.fatal:
            worker.emit({"type": "done", "fatal": True})
            return
    worker.emit({"type": "done", "ceilings": ceilings, "sync_overhead_ms": worker.timer.sync_overhead_ms(),
                 "device_name": torch.cuda.get_device_name(worker.device)})
