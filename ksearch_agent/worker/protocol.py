"""Length-prefixed JSON messages over a pair of pipe file descriptors.

The worker's stdout and stderr go to a log file, so a candidate that prints (even 100 MB) can never
corrupt or block the result channel.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">Q")
MAX_MESSAGE = 256 * 1024 * 1024


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


def recv(fd: int) -> dict[str, Any]:
    (size,) = _HEADER.unpack(read_exact(fd, _HEADER.size))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes exceeds the {MAX_MESSAGE} byte limit")
    message = json.loads(read_exact(fd, size))
    if not isinstance(message, dict):
        raise ValueError("message is not a JSON object")
    return message
