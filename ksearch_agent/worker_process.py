"""The calling application's handle on one isolated worker process (the judge, or a compile worker).

The process mechanics (own session, private pipes, capped log, deadlines) live in
:mod:`ksearch_agent.worker.process`, which the judge also uses for its contestants; this adds the
environment each mode needs and a log record per start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import structlog

from ksearch_agent.worker.process import ChildProcess, WorkerDied, WorkerError, WorkerTimeout

__all__ = ["WorkerDied", "WorkerError", "WorkerProcess", "WorkerTimeout", "worker_env"]

log = structlog.get_logger("ksearch.worker")


def worker_env(mode: str, gpu_index: int | None = None) -> dict[str, str]:
    """Environment of a worker of ``mode``: ``gpu`` sees its GPU, ``cpu`` runs Triton's interpreter,
    ``compile`` sees no device at all."""
    env = dict(os.environ)
    if mode == "gpu":
        env.pop("TRITON_INTERPRET", None)
        if gpu_index is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu_index)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""
        if mode == "cpu":
            env["TRITON_INTERPRET"] = "1"
        else:
            env.pop("TRITON_INTERPRET", None)
    return env


class WorkerProcess(ChildProcess):
    """A judge (``gpu`` or ``cpu``) or ``compile`` worker: ``python -m ksearch_agent.worker.main``."""

    def __init__(
        self,
        mode: str,
        workdir: Path,
        *,
        gpu_index: int | None = None,
        start_timeout: float = 180.0,
        log_name: str | None = None,
    ) -> None:
        super().__init__(
            "ksearch_agent.worker.main",
            mode,
            workdir,
            env=worker_env(mode, gpu_index),
            start_timeout=start_timeout,
            log_name=log_name,
        )
        self.gpu_index = gpu_index

    def ready(self) -> dict[str, Any]:
        fresh = not self.hello
        hello = super().ready()
        if fresh:
            log.info(
                "worker started",
                mode=self.mode,
                pid=self.pid,
                seconds=round(self.last_start_seconds, 2),
                device=hello.get("device_name"),
                stage="worker",
            )
        return hello
