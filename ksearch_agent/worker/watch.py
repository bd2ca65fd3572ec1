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
    # Raw handles of every torch Stream object made in this process. torch.cuda.current_stream() also
    # makes Stream objects, for the current stream; only handles other than the current and default
    # streams count as side streams.
    stream_handles: list[int] = []
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
            stream = original(kind, *args, **kwargs)
            cls.stream_handles.append(int(getattr(stream, "cuda_stream", 0)))
            return stream

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

    @staticmethod
    def _side_streams(handles: list[int]) -> set[int]:
        if not handles:
            return set()
        import torch

        legit = {0, int(torch.cuda.current_stream().cuda_stream), int(torch.cuda.default_stream().cuda_stream)}
        return {h for h in handles if h not in legit}

    def snapshot(self) -> dict[str, Any]:
        Watch.stream_handles.clear()  # snapshots and checks pair up, never nest: keep only this call's
        return {"threads": threading.active_count(), "streams": 0, "children": set(self._children())}

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
        side = self._side_streams(Watch.stream_handles[before["streams"]:])
        if side:
            problems.append(f"created {len(side)} CUDA stream(s): work on side streams is refused")
        return "; ".join(problems) or None
