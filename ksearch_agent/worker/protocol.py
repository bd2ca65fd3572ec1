"""Length-prefixed JSON messages over a pair of pipe file descriptors.

The worker's stdout and stderr go to a log file, so a candidate that prints (even 100 MB) can never
corrupt or block the result channel.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import traceback
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

_HEADER = struct.Struct(">Q")
MAX_MESSAGE = 256 * 1024 * 1024
# A child's end of a unix socket beside its pipes, for file descriptors (GPU slab handles) its parent passes.
FD_CHANNEL_ENV = "KSEARCH_FD_CHANNEL"


class ChannelClosed(EOFError):
    """The other end of the pipe went away (the process died or closed it)."""


def send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message, default=str).encode()
    _write_all(fd, _HEADER.pack(len(data)) + data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ChannelClosed("channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def take_fd(channel: socket.socket, tag: str, timeout: float = 10.0) -> int:
    """The next file descriptor the parent passed, which must carry ``tag``."""
    channel.settimeout(timeout)
    try:
        msg, fds, _, _ = socket.recv_fds(channel, 256, 1)
    except TimeoutError:
        raise ChannelClosed(f"no file descriptor for {tag} arrived") from None
    if not fds:
        raise ChannelClosed(f"the fd channel closed before {tag} arrived")
    if msg.decode(errors="replace") != tag:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"expected the file descriptor of {tag}, got one for {msg[:40]!r}")
    return fds[0]


def recv(fd: int) -> dict[str, Any]:
    (size,) = _HEADER.unpack(read_exact(fd, _HEADER.size))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes exceeds the {MAX_MESSAGE} byte limit")
    message = json.loads(read_exact(fd, size))
    if not isinstance(message, dict):
        raise ValueError("message is not a JSON object")
    return message


class _Greets(Protocol):
    def hello(self) -> dict[str, Any]: ...


G = TypeVar("G", bound=_Greets)


def start_with_hello(wfd: int, make: Callable[[], G]) -> G | None:
    """Build a worker's state and send its hello; a failure is sent as the hello's ``error`` (with the
    traceback) for the parent to report, and None is returned so the process can exit."""
    try:
        state = make()
        send(wfd, state.hello())
        return state
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides what to do
        send(
            wfd,
            {"type": "hello", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()},
        )
        return None


def reference_key(task: str, workload: str, protocol: str, launch_overlap_us: float) -> str:
    """What a cached reference time is kept under, in the judge and on the engine side alike (a launch gate
    does not enter it: the reference is never timed behind one)."""
    return f"{task}|{workload}|{protocol}|{float(launch_overlap_us or 0.0)}"
