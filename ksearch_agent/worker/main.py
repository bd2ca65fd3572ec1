"""Entry point of an isolated worker process: ``python -m ksearch_agent.worker.main RFD WFD MODE``.

MODE ``gpu`` or ``cpu`` makes it a *judge*: it owns the device (one GPU, or the CPU with Triton's
interpreter), makes inputs from the request's secret, runs the reference, compares and writes the
records, and never imports candidate code: each candidate runs in a fresh contestant process it starts
(:mod:`ksearch_agent.worker.contestant`), keeping one spare starting ahead of need. MODE ``compile``
(no device at all: traces Triton launches and compiles for sm_90a, or runs NVRTC) does run candidate
code, so the caller uses a fresh one per request. A worker answers requests until its input pipe
closes; every message it sends carries the request's nonce.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ksearch_agent.worker import protocol
from ksearch_agent.worker.limits import limit_resources


class Worker:
    def __init__(self, mode: str, wfd: int) -> None:
        self.mode, self.wfd = mode, wfd
        self.nonce: Any = None
        self.protection: dict[str, Any] = {}
        self.pool: Any = None
        if mode in ("gpu", "cpu"):
            from ksearch_agent.worker.contestants import ContestantPool

            try:
                from ksearch_agent.worker.sandbox import protect_judge

                self.protection = dict(protect_judge())
            except ImportError:
                self.protection = {}
            self.pool = ContestantPool(mode, Path.cwd())
            self.pool.prestart()  # starts while this process builds its own context
        import torch

        self.torch = torch
        self.device = torch.device("cuda", 0) if mode == "gpu" else torch.device("cpu")
        if mode == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError("gpu worker started but torch sees no CUDA device")
            torch.cuda.set_device(self.device)
            torch.empty(1, device=self.device)  # create the context now, not inside a timed call
        self.timer: Any = None

    def hello(self) -> dict[str, Any]:
        torch = self.torch
        info: dict[str, Any] = {
            "type": "hello",
            "mode": self.mode,
            "pid": os.getpid(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "judge_protection": self.protection,
        }
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
        if self.mode == "gpu":
            props = torch.cuda.get_device_properties(self.device)
            info.update(
                device_name=props.name,
                sm_count=props.multi_processor_count,
                l2_bytes=int(getattr(props, "L2_cache_size", 0)),
                capability=list(torch.cuda.get_device_capability(self.device)),
                cuda=torch.version.cuda,
            )
        else:
            info["device_name"] = "cpu"
        return info

    def emit(self, message: dict[str, Any]) -> None:
        protocol.send(self.wfd, {**message, "nonce": self.nonce})

    def handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        self.nonce = request.get("nonce")
        if op in ("correctness", "profile") and self.pool is None:
            self.emit({"type": "done", "error": f"{op} needs a judge (gpu or cpu worker), not {self.mode!r}"})
        elif op == "ping":
            self.emit({"type": "done", "pong": True})
        elif op == "correctness":
            from ksearch_agent.worker.correctness_job import run_correctness

            run_correctness(self, request)
        elif op == "check_reference":
            from ksearch_agent.worker.correctness_job import run_check_reference

            run_check_reference(self, request)
        elif op == "profile":
            from ksearch_agent.worker.profile_job import run_profile

            run_profile(self, request)
        elif op == "compile":
            from ksearch_agent.worker.compile_job import run_compile

            run_compile(self, request)
        else:
            self.emit({"type": "done", "error": f"unknown op {op!r}"})


def main(argv: list[str]) -> int:
    rfd, wfd, mode = int(argv[1]), int(argv[2]), argv[3]
    limit_resources()
    worker = protocol.start_with_hello(wfd, lambda: Worker(mode, wfd))
    if worker is None:
        return 2
    while True:
        try:
            request = protocol.recv(rfd)
        except protocol.ChannelClosed:
            return 0
        started = time.perf_counter()
        try:
            worker.handle(request)
        except Exception as exc:  # noqa: BLE001 - a bug in a job must not leave the parent waiting
            worker.emit(
                {
                    "type": "done",
                    "error": f"worker error: {type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            )
        sys.stdout.flush()
        sys.stderr.flush()
        if worker.mode == "gpu":
            from ksearch_agent.worker.session import context_is_healthy

            # Candidate faults end only their contestant; a fault in the judge's own context (its reference,
            # say) makes it exit, and the engine starts a fresh judge for the next request.
            if not context_is_healthy(worker.device):
                print(
                    f"judge exiting: its CUDA context is unusable ({time.perf_counter() - started:.1f}s)",
                    file=sys.stderr,
                )
                return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
