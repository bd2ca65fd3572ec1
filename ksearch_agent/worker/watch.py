"""What a candidate call leaves behind: new threads, child processes, CUDA streams — and forked copies.

Work started on another thread, process or stream can finish after the timer stops (or fake a result
later); a forked copy of the worker must never answer for it. Counted around every candidate call.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any


class Watch:
    streams_created = 0
    _patched = False

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._patch_streams()

    @classmethod
    def _patch_streams(cls) -> None:
        if cls._patched:
            return
        import torch

        original = torch.cuda.Stream.__new__

        def counting_new(kind: Any, *args: Any, **kwargs: Any) -> Any:
            cls.streams_created += 1
            return original(kind, *args, **kwargs)

        torch.cuda.Stream.__new__ = counting_new  # type: ignore[method-assign,assignment]
        cls._patched = True

    def _children(self) -> list[int]:
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            try:
                pids += [int(p) for p in task.read_text().split()]
            except (OSError, ValueError):
                continue
        return pids

    def snapshot(self) -> dict[str, Any]:
        return {"threads": threading.active_count(), "streams": Watch.streams_created,
                "children": set(self._children())}

    def check(self, before: dict[str, Any]) -> str | None:
        """A reason to reject the call, or None. A forked child exits here and never reports."""
        if os.getpid() != self.pid:
            os._exit(0)
        problems = []
        threads = threading.active_count() - before["threads"]
        if threads > 0:
            problems.append(f"started {threads} thread(s) that outlive the call")
        new_children = set(self._children()) - before["children"]
        if new_children:
            for pid in new_children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            problems.append(f"started {len(new_children)} child process(es) (killed)")
        streams = Watch.streams_created - before["streams"]
        if streams > 0:
            problems.append(f"created {streams} CUDA stream(s): work on side streams is refused")
        return "; ".join(problems) or None
