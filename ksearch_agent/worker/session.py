"""What a correctness or profile job shares: loading both entry points and calling them safely."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ksearch_agent.worker.loader import classify_exception, entry_point, load_module, short_traceback


@dataclass
class Failure:
    status: str
    log: str
    fatal: bool = False

    def as_result(self, workload_id: str) -> dict[str, Any]:
        return {"workload": workload_id, "status": self.status, "log": self.log}


def is_out_of_memory(exc: BaseException) -> bool:
    """PyTorch's allocator raises ``OutOfMemoryError``; a kernel launch or lazy module load that finds no
    device memory raises a plain CUDA error (``AcceleratorError``, a ``RuntimeError``) that says so."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def device_memory_note(device: torch.device) -> str:
    """Free device memory and what this process's allocator holds, for an out-of-memory message."""
    if device.type != "cuda":
        return "no GPU"
    try:
        free, total = torch.cuda.mem_get_info(device)
        held = torch.cuda.memory_reserved(device)
    except Exception:  # noqa: BLE001 - the note must not raise where an error is being reported
        return "device memory unknown"
    return (
        f"{free / 2**20:.0f} MiB of {total / 2**30:.1f} GiB free; this process holds {held / 2**30:.2f} GiB"
    )


def failure_from(exc: BaseException, where: str) -> Failure:
    status, fatal = classify_exception(exc)
    if is_out_of_memory(exc):
        where = f"{where} (out of GPU memory)"
    return Failure(status, f"{where}: {short_traceback(exc)}", fatal)


@dataclass
class Loaded:
    module: ModuleType | None
    api: str
    task: dict[str, Any]
    failure: Failure | None
    seconds: float

    def bind(self, axes: dict[str, int]) -> Callable[..., Any]:
        """The entry point for one workload (GPUMode submissions get its axes as ``config``)."""
        assert self.module is not None
        return entry_point(self.module, self.api, self.task, axes)


def load_entry(path: str, api: str, task: dict[str, Any], what: str, axes: dict[str, int]) -> Loaded:
    """Import a file and check its entry point exists; any failure becomes a status, never a crash."""
    t0 = time.perf_counter()
    try:
        module = load_module(Path(path), prefix=f"ksearch_{what}")
        entry_point(module, api, task, axes)
        return Loaded(module, api, task, None, time.perf_counter() - t0)
    except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        return Loaded(None, api, task, failure_from(exc, f"loading the {what}"), time.perf_counter() - t0)


def as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_cached_memory(device: torch.device) -> None:
    """Hand this process's cached, unused device memory back to the driver, so the other side of the card can
    use it: PyTorch's caching allocator keeps a call's peak otherwise (on an 80 GB H100 the judge held 63 GiB
    after TriMul's largest workloads and a contestant's 8.6 GiB allocation failed; a candidate's 44 GiB scratch
    starved the judge's next reference). The judge calls it after each trial's reference, the contestant after
    each correctness call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def poison_free_memory(device: torch.device, nbytes: int) -> None:
    """Leave only NaN-filled (0xFF) blocks in the caching allocator, so an output the candidate
    allocates but never writes cannot hold an earlier correct result."""
    if device.type != "cuda":
        return
    torch.cuda.empty_cache()
    block = torch.empty(max(nbytes, 1 << 20), dtype=torch.uint8, device=device)
    block.fill_(0xFF)
    del block


def context_is_healthy(device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    try:
        torch.cuda.synchronize(device)
        torch.empty(1, device=device).add_(1)
        torch.cuda.synchronize(device)
        return True
    except Exception:  # noqa: BLE001 - any error here means the context is gone
        return False
