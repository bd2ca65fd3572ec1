"""A handle on one child process that speaks the length-prefixed JSON protocol over a private pipe pair.

Used by the calling application for its judge and compile workers, and by the judge for its contestants,
so it needs only the standard library. The child runs in its own session (its process group is killed as
a whole), its stdout/stderr go to a capped log file, and every wait on it has a deadline: a child that
hangs is killed, one that dies is noticed at once, and either way the caller gets an exception it can turn
into a status. Only the two pipe ends named on the command line are inherited: nothing else the parent
holds (its own result channel above all) is reachable from the child.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from ksearch_agent.worker.protocol import _HEADER, FD_CHANNEL_ENV, MAX_MESSAGE, send

LOG_TAIL_BYTES = 4000
LOG_ROTATE_BYTES = 8 * 1024 * 1024


class WorkerError(RuntimeError):
    """The child could not answer; ``log_tail`` is what it printed last."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class WorkerTimeout(WorkerError):
    pass


class WorkerDied(WorkerError):
    pass


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def package_root() -> str:
    return str(Path(__file__).resolve().parent.parent.parent)


class ChildProcess:
    """One child ``python -m MODULE RFD WFD MODE``; :meth:`spawn` returns at once, :meth:`ready` waits
    for its hello, so a spare can start while the caller does other work."""

    def __init__(
        self,
        module: str,
        mode: str,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        start_timeout: float = 180.0,
        log_name: str | None = None,
        launcher: list[str] | None = None,
    ) -> None:
        self.module, self.mode, self.workdir = module, mode, workdir
        self.launcher = list(launcher or [])  # a program that runs before the interpreter (and execs it)
        self.start_timeout = start_timeout
        self.base_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.hello: dict[str, Any] = {}
        self.log_path = workdir / (log_name or f"worker-{mode}.log")
        self._rfd = self._wfd = -1
        self._fd_channel: socket.socket | None = None
        self._buffer = b""
        self._log_start = 0
        self._spawned_at = 0.0
        self.starts = 0
        self.last_start_seconds = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ if self.base_env is None else self.base_env)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root(), env.get("PYTHONPATH", "")) if p)
        return env

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        self.stop()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawned_at = time.perf_counter()
        self._log_start = self.log_size()  # tails show this process's output, not a predecessor's
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = self._env()
        env[FD_CHANNEL_ENV] = str(theirs.fileno())
        try:
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(
                    [
                        *self.launcher,
                        sys.executable,
                        "-m",
                        self.module,
                        str(to_child_r),
                        str(from_child_w),
                        self.mode,
                    ],
                    pass_fds=(to_child_r, from_child_w, theirs.fileno()),
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=logf,
                    start_new_session=True,
                    env=env,
                    cwd=str(self.workdir),
                )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
            theirs.close()
        self._wfd, self._rfd, self._buffer = to_child_w, from_child_r, b""
        self._fd_channel = ours
        self.hello = {}
        self.starts += 1

    def ready(self) -> dict[str, Any]:
        """Wait for the hello of a spawned process; raises WorkerError if it failed to start."""
        if self.hello:
            return self.hello
        if self.proc is None:
            self.spawn()
        hello = self.recv(time.monotonic() + self.start_timeout)
        if "error" in hello:
            tail = self.log_tail()
            self.stop()
            raise WorkerError(f"{self.mode} process failed to start: {hello['error']}", tail)
        self.hello = hello
        self.last_start_seconds = time.perf_counter() - self._spawned_at
        return hello

    def start(self) -> dict[str, Any]:
        self.spawn()
        return self.ready()

    def stop(self) -> None:
        """Kill the process and its whole process group; idempotent."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.kill()
            except OSError:
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
        if self._fd_channel is not None:
            self._fd_channel.close()
            self._fd_channel = None
        self.proc = None
        self.hello = {}

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

    def rotate_log(self) -> None:
        if self.log_size() > LOG_ROTATE_BYTES:
            with open(self.log_path, "r+b") as f:
                f.truncate(0)
            self._log_start = 0

    def _fill(self, need: int, deadline: float) -> None:
        while len(self._buffer) < need:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout(f"{self.mode} process did not answer in time", self.log_tail())
            ready, _, _ = select.select([self._rfd], [], [], min(remaining, 1.0))
            if not ready:
                if self.proc is not None and self.proc.poll() is not None:
                    raise WorkerDied(
                        f"{self.mode} process {describe_exit(self.proc.returncode)}", self.log_tail()
                    )
                continue
            chunk = os.read(self._rfd, 1 << 20)
            if not chunk:
                code = None
                if self.proc is not None:
                    try:
                        code = self.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        code = None
                raise WorkerDied(f"{self.mode} process {describe_exit(code)}", self.log_tail())
            self._buffer += chunk

    def recv(self, deadline: float) -> dict[str, Any]:
        """The next message; garbage on the channel is reported as a dead child, never parsed leniently."""
        self._fill(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(self._buffer[: _HEADER.size])
        if size > MAX_MESSAGE:
            raise WorkerDied(f"{self.mode} process sent an oversized message ({size} bytes)", self.log_tail())
        self._fill(_HEADER.size + size, deadline)
        body = self._buffer[_HEADER.size : _HEADER.size + size]
        self._buffer = self._buffer[_HEADER.size + size :]
        try:
            message = json.loads(body)
        except ValueError:
            raise WorkerDied(f"{self.mode} process sent a malformed message", self.log_tail()) from None
        if not isinstance(message, dict):
            raise WorkerDied(f"{self.mode} process sent a non-object message", self.log_tail())
        return message

    def send(self, message: dict[str, Any]) -> None:
        try:
            send(self._wfd, message)
        except (BrokenPipeError, OSError):
            code = self.proc.poll() if self.proc is not None else None
            tail = self.log_tail()
            self.stop()
            raise WorkerDied(f"{self.mode} process {describe_exit(code)}", tail) from None

    def send_fd(self, tag: str, fd: int) -> None:
        """Pass a file descriptor (a GPU slab's shareable handle) to the child over its fd channel; the
        child takes it when a request names ``tag``, so this goes before that request."""
        if self._fd_channel is None:
            raise WorkerDied(f"{self.mode} process is not running", self.log_tail())
        try:
            socket.send_fds(self._fd_channel, [tag.encode()], [fd])
        except OSError as exc:
            code = self.proc.poll() if self.proc is not None else None
            tail = self.log_tail()
            self.stop()
            raise WorkerDied(f"{self.mode} process {describe_exit(code)} ({exc})", tail) from None

    def ask(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request, one reply (the contestant's calls); the process is killed on timeout or death."""
        if not self.hello:
            self.ready()
        try:
            self.send(message)
            return self.recv(time.monotonic() + timeout)
        except WorkerError:
            self.stop()
            raise

    def request(self, message: dict[str, Any], *, timeout_per_message: float) -> Iterator[dict[str, Any]]:
        """Send one request and yield the replies up to and including ``done``; each must arrive within
        ``timeout_per_message`` seconds of the previous one."""
        if not self.alive or not self.hello:
            self.start() if not self.alive else self.ready()
        self.rotate_log()
        try:
            self.send(message)
            while True:
                reply = self.recv(time.monotonic() + timeout_per_message)
                yield reply
                if reply.get("type") == "done":
                    if reply.get("fatal"):
                        self.stop()
                    return
        except WorkerError:
            self.stop()
            raise


P = TypeVar("P", bound=ChildProcess)


class Spares(Generic[P]):
    """Single-use processes made by ``make(n)`` (n counts them), with the next one always spawned ahead
    of need so its start-up overlaps the caller's work. Safe to share between threads."""

    def __init__(self, make: Callable[[int], P]) -> None:
        self._make = make
        self._next: P | None = None
        self._lock = threading.Lock()
        self.started = 0

    def _spawn(self) -> P:
        self.started += 1
        proc = self._make(self.started)
        proc.spawn()
        return proc

    def prestart(self) -> None:
        with self._lock:
            if self._next is None or not self._next.alive:
                self._next = self._spawn()

    def take(self) -> P:
        """The spare (spawned, perhaps not ready yet); the next one is spawned at once."""
        with self._lock:
            proc = self._next if self._next is not None and self._next.alive else self._spawn()
            self._next = self._spawn()
        return proc

    def replace(self) -> P:
        """A fresh process in place of one that failed to start (the spare is left as it is)."""
        with self._lock:
            return self._spawn()

    def spare_pid(self) -> int | None:
        return self._next.pid if self._next is not None else None

    def close(self) -> None:
        with self._lock:
            if self._next is not None:
                self._next.stop()
                self._next = None
