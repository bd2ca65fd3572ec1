"""A per-GPU lease: correctness checks may share a GPU, a profile holds it alone.

A readers-writer lock with writer preference: a waiting profile stops new correctness checks from starting
on that GPU, so timing is never starved by a stream of checks, and nothing else runs on the GPU while a
candidate and its reference are being timed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class GpuLease:
    """``shared()`` for work that may overlap (correctness), ``exclusive()`` for timing."""

    def __init__(self, name: str = "gpu") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
