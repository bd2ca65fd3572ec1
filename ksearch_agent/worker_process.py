"""The caller's handle on one isolated worker process.

The worker is a separate Python process in its own session (so forks die with it), talking over a
private pipe pair; its stdout/stderr go to a capped log file. Every wait on it has a deadline: a
worker that hangs is killed (SIGKILL to the whole process group), one that dies is noticed at once,
and either way the caller gets an exception it can turn into a status and a fresh worker.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from ksearch_agent.worker.protocol import _HEADER, MAX_MESSAGE, send

log = structlog.get_logger("ksearch.worker")

LOG_TAIL_BYTES = 4000
LOG_ROTATE_BYTES = 8 * 1024 * 1024


class WorkerError(RuntimeError):
    """The worker could not answer; ``log_tail`` is what it printed last."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class WorkerTimeout(WorkerError):
    pass


class WorkerDied(WorkerError):
    pass


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class WorkerProcess:
    """One long-lived worker in ``mode`` gpu, cpu (Triton interpreter) or compile (no device)."""

    def __init__(self, mode: str, workdir: Path, *, gpu_index: int | None = None, start_timeout: float = 180.0) -> None:
        self.mode, self.workdir, self.gpu_index = mode, workdir, gpu_index
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.hello: dict[str, Any] = {}
        self.log_path = workdir / f"worker-{mode}.log"
        self._rfd = self._wfd = -1
        self._buffer = b""
        self._log_start = 0
        self.starts = 0
        self.last_start_seconds = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
        if self.mode == "gpu":
            env.pop("TRITON_INTERPRET", None)
            if self.gpu_index is not None:
                env["CUDA_VISIBLE_DEVICES"] = str(self.gpu_index)
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
            if self.mode == "cpu":
                env["TRITON_INTERPRET"] = "1"
            else:
                env.pop("TRITON_INTERPRET", None)
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        return env

    def start(self) -> dict[str, Any]:
        self.stop()
        self.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        self._log_start = self.log_size()  # tails show this worker's output, not a predecessor's
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ksearch_agent.worker.main", str(to_child_r), str(from_child_w), self.mode],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True, env=self._env(), cwd=str(self.workdir))
        os.close(to_child_r)
        os.close(from_child_w)
        self._wfd, self._rfd, self._buffer = to_child_w, from_child_r, b""
        self.starts += 1
        hello = self._recv(time.monotonic() + self.start_timeout)
        if "error" in hello:
            tail = self.log_tail()
            self.stop()
            raise WorkerError(f"{self.mode} worker failed to start: {hello['error']}", tail)
        self.hello = hello
        self.last_start_seconds = time.perf_counter() - t0
        log.info("worker started", mode=self.mode, pid=self.proc.pid, seconds=round(self.last_start_seconds, 2),
                 device=hello.get("device_name"), stage="worker")
        return hello

    def stop(self) -> None:
        """Kill the worker and everything it spawned; idempotent."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for fd in (self._rfd, self._wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._rfd = self._wfd = -1
        self.proc = None

    def log_tail(self, since: int | None = None) -> str:
        since = self._log_start if since is None else since
        try:
            with open(self.log_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(since, size - LOG_TAIL_BYTES)
                f.seek(start)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return ("[...]" if start > since else "") + text

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _rotate_log(self) -> None:
        if self.log_size() > LOG_ROTATE_BYTES:
            with open(self.log_path, "r+b") as f:
                f.truncate(0)
            self._log_start = 0

    def _fill(self, need: int, deadline: float) -> None:
        while len(self._buffer) < need:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout(f"{self.mode} worker did not answer in time", self.log_tail())
            ready, _, _ = select.select([self._rfd], [], [], min(remaining, 1.0))
            if not ready:
                if self.proc is not None and self.proc.poll() is not None:
                    raise WorkerDied(f"{self.mode} worker {_describe_exit(self.proc.returncode)}", self.log_tail())
                continue
            chunk = os.read(self._rfd, 1 << 20)
            if not chunk:
                code = self.proc.wait(timeout=10) if self.proc is not None else None
                raise WorkerDied(f"{self.mode} worker {_describe_exit(code)}", self.log_tail())
            self._buffer += chunk

    def _recv(self, deadline: float) -> dict[str, Any]:
        import json

        self._fill(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(self._buffer[: _HEADER.size])
        if size > MAX_MESSAGE:
            raise WorkerDied(f"{self.mode} worker sent an oversized message ({size} bytes)", self.log_tail())
        self._fill(_HEADER.size + size, deadline)
        body = self._buffer[_HEADER.size: _HEADER.size + size]
        self._buffer = self._buffer[_HEADER.size + size:]
        return dict(json.loads(body))

    def request(self, message: dict[str, Any], *, timeout_per_message: float) -> Iterator[dict[str, Any]]:
        """Send one request and yield the worker's messages up to and including ``done``.

        Each message must arrive within ``timeout_per_message`` seconds of the previous one; on a
        timeout or death the worker is killed before the exception propagates.
        """
        if not self.alive:
            self.start()
        self._rotate_log()
        try:
            send(self._wfd, message)
            while True:
                reply = self._recv(time.monotonic() + timeout_per_message)
                yield reply
                if reply.get("type") == "done":
                    if reply.get("fatal"):
                        self.stop()
                    return
        except BrokenPipeError:
            code = self.proc.poll() if self.proc is not None else None
            tail = self.log_tail()
            self.stop()
            raise WorkerDied(f"{self.mode} worker {_describe_exit(code)}", tail) from None
        except WorkerError:
            self.stop()
            raise
