"""The judge's side of its contestants: a warm spare per judge, one fresh process per candidate evaluation.

A contestant costs a few seconds to start (Python, torch, a CUDA context), so the judge always keeps one
started ahead of need; taking it starts the next. Every request carries a nonce the reply must echo,
and a reply of the wrong type or nonce is treated as a broken contestant, never as a result. When an
evaluation ends the contestant's process group is killed, and any process that escaped it (re-parented
to the judge, which is a child subreaper) is killed too.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ksearch_agent.worker.process import ChildProcess, Spares, WorkerDied, WorkerError


class ContestantError(WorkerError):
    """The contestant answered something that is not an answer to the request."""


def contestant_env(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    if mode == "cpu":
        env["TRITON_INTERPRET"] = "1"
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env.pop("TRITON_INTERPRET", None)
    return env


class Contestant:
    """One contestant process serving one candidate (or one baseline) of one evaluation."""

    def __init__(self, proc: ChildProcess) -> None:
        self.proc = proc
        self.hello = proc.hello
        self._slabs_passed: set[str] = set()

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def log_tail(self) -> str:
        return self.proc.log_tail()

    def ask(self, message: dict[str, Any], expect: str, timeout: float) -> dict[str, Any]:
        nonce = secrets.token_hex(8)
        self._pass_slab(message.get("slab"))
        reply = self.proc.ask({**message, "nonce": nonce}, timeout)
        if reply.get("nonce") != nonce or reply.get("type") not in (expect, "error"):
            self.proc.stop()
            raise ContestantError(
                f"the contestant answered {str(reply.get('type'))[:40]!r} to a "
                f"{message.get('op')!r} request that expected {expect!r}: incomplete result"
            )
        return reply

    def _pass_slab(self, handle: Any) -> None:
        """A GPU slab's file descriptor goes over the fd channel before the first request naming it."""
        if not isinstance(handle, dict) or handle.get("kind") != "cuda_vmm":
            return
        slab_id = str(handle["id"])
        if slab_id in self._slabs_passed:
            return
        from ksearch_agent.worker.slab import EXPORTED

        if not self.hello:
            self.proc.ready()
        self.proc.send_fd(slab_id, EXPORTED[slab_id])
        self._slabs_passed.add(slab_id)

    def finish(self) -> None:
        self.proc.stop()


class ContestantPool:
    """Fresh contestants of one mode, with one spare kept starting in the background."""

    def __init__(self, mode: str, workdir: Path, *, start_timeout: float = 180.0) -> None:
        self.mode, self.workdir, self.start_timeout = mode, workdir, start_timeout
        self.spares: Spares[ChildProcess] = Spares(self._make)
        self.last_wait_seconds = 0.0

    def _make(self, n: int) -> ChildProcess:
        # Confined before its interpreter starts: a Landlock domain taken later would leave the threads
        # that imports start (numpy's, CUDA's) outside it on kernels before Landlock ABI 8.
        return ChildProcess(
            "ksearch_agent.worker.contestant",
            self.mode,
            self.workdir,
            env=contestant_env(self.mode),
            start_timeout=self.start_timeout,
            log_name=f"contestant-{self.mode}-{n % 4}.log",
            launcher=[sys.executable, "-m", "ksearch_agent.worker.sandbox"],
        )

    def prestart(self) -> None:
        self.spares.prestart()

    def take(self) -> Contestant:
        """A ready contestant that has run no candidate code; the next spare starts at once."""
        t0 = time.perf_counter()
        proc = self.spares.take()
        try:
            proc.ready()
        except WorkerError:
            proc.stop()
            proc = self.spares.replace()
            proc.ready()
        self.last_wait_seconds = time.perf_counter() - t0
        return Contestant(proc)

    def spare_pid(self) -> int | None:
        return self.spares.spare_pid()

    def close(self) -> None:
        self.spares.close()


def kill_strays(keep: set[int]) -> list[int]:
    """Kill and reap children of this process (the judge) other than ``keep``: descendants of a killed
    contestant that escaped its process group are re-parented here, since the judge is a subreaper."""
    killed: list[int] = []
    me = os.getpid()
    pids: set[int] = set()
    for task in Path(f"/proc/{me}/task").glob("*/children"):
        try:
            pids.update(int(p) for p in task.read_text().split())
        except (OSError, ValueError):
            continue
    for pid in pids - keep:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    for pid in killed:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return killed


def lend_slab(contestant: Contestant, nbytes: int, device: Any, timeout: float) -> Any:
    """A slab for ``contestant``, mapped on its side before any call names it.

    A GPU slab is VMM memory passed by file descriptor; where the contestant cannot map that (an old driver,
    a container without the permission), the judge falls back to a legacy CUDA IPC handle, which works
    everywhere but reads large random gathers several times slower, and records why in ``FALLBACKS``.
    """
    from ksearch_agent.worker.slab import FALLBACKS, Slab

    slab = Slab.create(nbytes, device)
    if slab.handle().get("kind") != "cuda_vmm":
        return slab
    try:
        reply = contestant.ask({"op": "map", "slab": slab.handle()}, "mapped", timeout)
    except WorkerError:
        slab.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a failure to pass the slab leaves the legacy path
        reply = {"type": "error", "error": f"{type(exc).__name__}: {exc}"}
    if reply.get("type") == "mapped":
        return slab
    FALLBACKS.append(f"the contestant could not map a VMM slab: {str(reply.get('error'))[:300]}")
    slab.close()
    return Slab.create(nbytes, device, legacy_ipc=True)


__all__ = [
    "Contestant",
    "ContestantError",
    "ContestantPool",
    "WorkerDied",
    "WorkerError",
    "kill_strays",
    "lend_slab",
]
