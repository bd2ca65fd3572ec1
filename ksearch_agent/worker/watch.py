"""What a candidate call leaves behind, seen at the OS level: threads, child processes, CUDA side streams.

Work started on another thread, process or stream can finish after the timer stops, or write a result
later; a forked copy of the process must never answer for it. Counted around every candidate call:

* threads: the OS threads in ``/proc/self/task`` (``threading.active_count()`` misses ``_thread``,
  threads started in C and TorchScript's inter-op pool). A call is refused for any thread id that was
  not there before it and still is after it.
* children: ``/proc/self/task/*/children`` (every thread's children). With :func:`make_subreaper` a
  grandchild whose parent exits (a double fork) is re-parented to us and seen too. Children found are
  killed with their descendants (and their process groups, when a descendant leads the group).
* side streams: every ``torch.cuda.Stream`` made during the call other than the current and default
  streams.

Runtimes start some threads lazily, on a first call: :func:`settle_runtime_threads` makes them exist
(or never exist) before the baseline, so a legitimate candidate is not refused for them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
_REAP_SECONDS = 1.0


def os_thread_count() -> int:
    """OS threads of this process right now."""
    return len(_thread_ids())


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _children_of(pid: int | str) -> set[int]:
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found.update(int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def _children_by_scan(pid: int) -> set[int]:
    """Children found by each process's parent pid (kernels without CONFIG_PROC_CHILDREN)."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.add(int(entry))
    return found


_HAS_CHILDREN_FILES = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


def child_pids() -> list[int]:
    """This process's children (zombies included: they are ours until reaped), sorted."""
    pid = os.getpid()
    found = _children_of(pid) if _HAS_CHILDREN_FILES else _children_by_scan(pid)
    return sorted(found)


def make_subreaper() -> bool:
    """Become the reaper of orphaned descendants (``PR_SET_CHILD_SUBREAPER``), so a grandchild whose
    parent exits is re-parented to this process and seen by :func:`child_pids`. False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def settle_runtime_threads(intra_op_threads: int = 1) -> dict[str, int]:
    """Start (or rule out) the threads PyTorch starts lazily, before the harness takes its baseline.

    Measured on this project's CPU machine (2 cores, torch 2.13, Triton 3.9 interpreter), counting
    ``/proc/self/task``: a bare Python has 1 thread; ``import numpy`` starts OpenBLAS's pool (cores - 1
    threads, 1 here); ``import torch`` adds none beyond that; the first parallel CPU op (a 256 x 256
    matmul) starts the OpenMP intra-op pool (cores - 1 threads); a TorchScript ``fork`` starts the
    inter-op pool (2 threads here) on first use; eager ``torch.jit.fork`` runs inline (no thread); the
    Triton interpreter starts none.

    So: the intra-op pool is fixed at ``intra_op_threads`` and warmed with an op large enough to be
    split, so it exists before the baseline; the inter-op pool is capped at one thread but deliberately
    NOT started, because a candidate that submits TorchScript work to an existing pool leaves no new
    thread behind to see (a legitimate Triton/CUDA candidate never uses it). On a GPU the CUDA context
    (with its driver threads) is made before this is called; the first tiny op on it is run here.
    Returns the thread counts seen before and after.
    """
    import torch

    before = os_thread_count()
    torch.set_num_threads(max(1, intra_op_threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or the pool already started: nothing more to settle
        pass
    x = torch.ones(1 << 17)
    (x + 1).sum()  # above the intra-op grain size: the pool starts here if it ever does
    torch.ones(64, 64) @ torch.ones(64, 64)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        y = torch.ones(64, device="cuda")
        (y + 1).sum().item()
        torch.cuda.synchronize()
    return {"threads_before": before, "threads_after": os_thread_count()}


def _descendants(roots: set[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(_children_of(pid) - seen)
    return seen


def _kill_tree(roots: set[int], spare: set[int]) -> set[int]:
    """SIGKILL the roots, their descendants and the process groups any of them leads, then reap ours.

    Descendants are listed while their parents still exist; orphans that are re-parented to us while
    we kill (subreaper) turn up as new children and are killed in the next round. ``spare``: children
    that were there before the call (never touched).
    """
    own_group = os.getpgrp()
    killed: set[int] = set()
    for _ in range(50):
        targets = _descendants(roots | (set(child_pids()) - spare)) - killed
        if not targets:
            break
        for pid in sorted(targets):
            try:
                group = os.getpgid(pid)
                if group != own_group and group in targets | killed:
                    os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        killed |= targets
        time.sleep(0.002)  # let the killed exit, so their orphans are re-parented before the next look
    _reap(killed)
    return killed


def _reap(pids: set[int]) -> None:
    """Wait for killed children of ours so they stop showing up as children (zombies)."""
    deadline = time.monotonic() + _REAP_SECONDS
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in sorted(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not ours (a grandchild) or already reaped
                pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.005)


class Watch:
    """Snapshots before a call and the reasons to refuse it after."""

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

    @staticmethod
    def _side_streams(handles: list[int]) -> set[int]:
        if not handles:
            return set()
        import torch

        legit = {
            0,
            int(torch.cuda.current_stream().cuda_stream),
            int(torch.cuda.default_stream().cuda_stream),
        }
        return {h for h in handles if h not in legit}

    def snapshot(self, *, children: bool = True) -> dict[str, Any]:
        """The state to compare against after the call (snapshots and checks pair up, never nest).

        ``children=False`` skips the child scan (one read per thread): for timed calls, whose host time
        the judge compares with its wall clock; the contestant audits its children after each batch.
        """
        Watch.stream_handles.clear()
        threads = _thread_ids()
        return {
            "threads": threads,
            "thread_count": len(threads),
            "children": set(child_pids()) if children else None,
            "streams": 0,
        }

    def check(self, before: dict[str, Any]) -> list[str]:
        """Reasons to refuse the call, each starting with its rule tag; empty when there are none.

        A forked copy of this process exits here, silently, and never reports.
        """
        if os.getpid() != self.pid:
            os._exit(0)
        problems = []
        new_threads = _thread_ids() - set(before["threads"])
        if new_threads:
            problems.append(
                f"[threads] the call left {len(new_threads)} new OS thread(s) running "
                f"({os_thread_count()} now, {before['thread_count']} before)"
            )
        new_children = (
            set(child_pids()) - set(before["children"]) if before["children"] is not None else set()
        )
        if new_children:
            killed = _kill_tree(new_children, set(before["children"]))
            problems.append(
                f"[children] the call left {len(new_children)} child process(es) behind; "
                f"{len(killed)} process(es) with their descendants (killed)"
            )
        side = self._side_streams(Watch.stream_handles[before["streams"] :])
        if side:
            problems.append(
                f"[side-stream] the call created {len(side)} CUDA stream(s): work on side streams is refused"
            )
        return problems
