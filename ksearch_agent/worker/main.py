"""Entry point of an isolated worker process: ``python -m ksearch_agent.worker.main RFD WFD MODE``.

MODE is ``gpu`` (owns one GPU), ``cpu`` (Triton interpreter on CPU workloads) or ``compile`` (no
device at all: traces Triton launches and compiles for sm_90a, or runs NVRTC). The worker answers
requests until its input pipe closes. A CUDA fault poisons the context, so after reporting it the
worker exits and the caller starts a fresh one.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
import traceback
from typing import Any

from ksearch_agent.worker import protocol

LOG_FILE_LIMIT = 64 * 1024 * 1024


def _limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cap = LOG_FILE_LIMIT if hard == resource.RLIM_INFINITY else min(LOG_FILE_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails instead of killing us


class Worker:
    def __init__(self, mode: str, wfd: int) -> None:
        self.mode, self.wfd = mode, wfd
        self.fatal = False
        if mode == "cpu":
            from ksearch_agent.worker.interpreter import patch_bf16_dot

            self.bf16_dot_patched = patch_bf16_dot()
        import torch

        self.torch = torch
        self.device = torch.device("cuda", 0) if mode == "gpu" else torch.device("cpu")
        if mode == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError("gpu worker started but torch sees no CUDA device")
            torch.cuda.set_device(self.device)
            torch.empty(1, device=self.device)  # create the context now, not inside a timed call
        from ksearch_agent.worker.watch import Watch

        self.watch = Watch()
        self.timer: Any = None
        self.ref_times: dict[str, dict[str, Any]] = {}

    def hello(self) -> dict[str, Any]:
        torch = self.torch
        info: dict[str, Any] = {"type": "hello", "mode": self.mode, "pid": os.getpid(), "torch": torch.__version__,
                                "python": sys.version.split()[0]}
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
        if self.mode == "gpu":
            props = torch.cuda.get_device_properties(self.device)
            info.update(device_name=props.name, sm_count=props.multi_processor_count,
                        l2_bytes=int(getattr(props, "L2_cache_size", 0)),
                        capability=list(torch.cuda.get_device_capability(self.device)),
                        cuda=torch.version.cuda)
        else:
            info["device_name"] = "cpu"
        return info

    def emit(self, message: dict[str, Any]) -> None:
        protocol.send(self.wfd, message)

    def handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "ping":
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
    _limit_resources()
    try:
        worker = Worker(mode, wfd)
        protocol.send(wfd, worker.hello())
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides what to do
        protocol.send(wfd, {"type": "hello", "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc()})
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
            worker.emit({"type": "done", "error": f"worker error: {type(exc).__name__}: {exc}",
                         "traceback": traceback.format_exc()})
        sys.stdout.flush()
        sys.stderr.flush()
        if worker.fatal:
            print(f"worker exiting after a fatal CUDA error ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
            return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
