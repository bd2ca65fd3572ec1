"""The untrusted side of an evaluation: ``python -m ksearch_agent.worker.contestant RFD WFD MODE``.

One fresh process per candidate evaluation, started by the judge ahead of need (a warm spare) and
killed with its whole process group afterwards. It sets up its harness first — devices, the op and
launch counters, the thread/process watch, its sandbox, the timing functions — and only then imports
the candidate. It never sees the reference, the expected output, the seed or the judge's result
channel: inputs arrive in a slab the judge lends it, outputs go back into that slab, and everything it
reports is data the judge checks. Anything in this process is the candidate's to change once it is
imported, so nothing here is trusted; the judge relies only on what it can verify from outside.
"""

from __future__ import annotations

import gc
import os
import select
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from ksearch_agent.worker import protocol
from ksearch_agent.worker.gate import MAX_GATE_US
from ksearch_agent.worker.limits import limit_resources

# An experiment switch for the candidates' timing spread (issue 17): after each reply, poll for the next request
# for up to this many milliseconds before blocking on it, so the process's CPU does not go idle between the
# calls of a profile (a CPU woken from idle runs the next call's host path slower). 0 (the default): block at once.
HOT_WAIT_ENV = "KSEARCH_CONTESTANT_HOT_WAIT_MS"


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


class Harness:
    """Everything the contestant sets up before the candidate is imported, and the requests it serves."""

    def __init__(self, mode: str, wfd: int) -> None:
        self.mode, self.wfd = mode, wfd
        import torch

        self.torch = torch
        if mode == "cpu":
            from ksearch_agent.worker import interpreter

            interpreter.patch_bf16_dot()
            interpreter.poison_cpu_allocations(True)
            self._shuffle: Callable[[int | None], object] | None = interpreter.shuffle_program_order
        else:
            self._shuffle = None
        self.device = torch.device("cuda", 0) if mode == "gpu" else torch.device("cpu")
        if mode == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError("gpu contestant started but torch sees no CUDA device")
            torch.cuda.set_device(self.device)
            torch.empty(1, device=self.device)  # the context exists before anything is timed or counted
        import triton  # noqa: F401 - imported before the candidate so the launch hooks can be installed

        from ksearch_agent.worker import watch as watch_mod
        from ksearch_agent.worker.monitor import CallMonitor, call_problems

        watch_mod.settle_runtime_threads()
        self.subreaper = watch_mod.make_subreaper()
        self.watch = watch_mod.Watch()
        self.monitor = CallMonitor()
        self.call_problems = call_problems
        # Taken before the candidate exists; it can still patch the originals, which is why the judge
        # checks every reported time against its own wall clock and the roofline.
        self._sync: Callable[[], None] = torch.cuda.synchronize if mode == "gpu" else (lambda: None)
        self._event = torch.cuda.Event if mode == "gpu" else None
        self._perf = time.perf_counter
        self.sandbox = _sandbox_report()
        self.slabs: dict[str, Any] = {}
        channel = os.environ.pop(protocol.FD_CHANNEL_ENV, "")
        self.fd_channel = socket.socket(fileno=int(channel)) if channel.isdigit() else None
        self._view_cache: dict[tuple[str, str], list[Any]] = {}
        self.loaded: Any = None
        self._gate: Any = None
        self.language = "python"
        self.bound: dict[str, Callable[..., Any]] = {}
        self.last_out: tuple[Any, ...] | None = None
        self.audit_base: dict[str, Any] | None = None

    # -- plumbing -------------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        torch = self.torch
        info: dict[str, Any] = {
            "type": "hello",
            "role": "contestant",
            "mode": self.mode,
            "pid": os.getpid(),
            "sandbox": self.sandbox,
            "subreaper": self.subreaper,
        }
        if self.mode == "gpu":
            info["device_name"] = torch.cuda.get_device_name(self.device)
        return info

    def _problems(self, before: dict[str, Any]) -> list[str]:
        return list(self.watch.check(before))

    def _slab(self, handle: dict[str, Any]) -> Any:
        from ksearch_agent.worker.slab import Slab

        key = str(handle.get("id") or handle.get("handle") or handle.get("path"))
        if key not in self.slabs:
            fd = None
            if handle.get("kind") == "cuda_vmm":
                if self.fd_channel is None:
                    raise RuntimeError("no fd channel to receive the judge's GPU slab on")
                fd = protocol.take_fd(self.fd_channel, key)
            self.slabs[key] = Slab.open(handle, self.device, fd)
        return self.slabs[key]

    def _views(self, req: dict[str, Any], which: str) -> list[Any]:
        """Tensors over the slab's regions, made once per layout (a timed call should not pay for them)."""
        from ksearch_agent.worker.slab import Region

        slab_handle = req["slab"]
        key = (str(slab_handle.get("handle") or slab_handle.get("path")), repr(req[which]))
        views = self._view_cache.get(key)
        if views is None:
            slab = self._slab(slab_handle)
            views = self._view_cache[key] = [slab.view(Region.from_json(r)) for r in req[which]]
        return list(views)

    def _entry(self, axes: dict[str, int]) -> Callable[..., Any]:
        key = repr(sorted(axes.items()))
        if key not in self.bound:
            self.bound[key] = self.loaded.bind(axes)
        return self.bound[key]

    # -- requests -------------------------------------------------------------------------------------

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        nonce = req.get("nonce")
        if op == "load":
            reply = self.load(req)
        elif op == "call":
            reply = self.call(req)
        elif op == "time":
            reply = self.time_call(req)
        elif op == "export":
            reply = self.export(req)
        elif op == "map":
            self._slab(req["slab"])
            reply = {"type": "mapped"}
        elif op == "audit":
            reply = {
                "type": "audited",
                "problems": self._problems(self.audit_base) if self.audit_base else [],
            }
        else:
            reply = {"type": "error", "error": f"unknown op {op!r}"}
        reply["nonce"] = nonce
        return reply

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        """Import the candidate (its import-time code runs here, watched like a call)."""
        from ksearch_agent.worker.session import load_entry

        if self.loaded is not None:
            return {
                "type": "loaded",
                "failure": {"status": "RUNTIME_ERROR", "log": "this contestant already holds a candidate"},
            }
        cache = req.get("triton_cache_dir")
        if cache:
            os.environ["TRITON_CACHE_DIR"] = str(cache)
            try:
                import triton

                triton.knobs.cache.dir = str(cache)
            except (AttributeError, ImportError):
                pass
        self.language = str(req.get("language", "python"))
        before = self.watch.snapshot()
        loaded = load_entry(
            req["candidate"]["path"], req["candidate"]["api"], req["task"], "candidate", req.get("axes") or {}
        )
        problems = self._problems(before)
        if loaded.failure is not None:
            return {
                "type": "loaded",
                "failure": {"status": loaded.failure.status, "log": loaded.failure.log},
                "problems": problems,
            }
        self.loaded = loaded
        self.audit_base = self.watch.snapshot()
        return {
            "type": "loaded",
            "problems": [f"{p} (at import)" for p in problems],
            "seconds": loaded.seconds,
        }

    def _run_call(self, fn: Callable[..., Any], args: list[Any], count: bool) -> tuple[Any, list[str]]:
        before = self.watch.snapshot()
        with self.torch.no_grad(), self.monitor.watch(ops=count) as record:
            out = fn(*args)
        self._sync()
        problems = self._problems(before)
        if count:
            problems += list(self.call_problems(record, self.language))
        return out, problems

    def _describe(self, out: Any) -> list[dict[str, Any]]:
        torch = self.torch
        outs = tuple(out) if isinstance(out, tuple | list) else (out,)
        described: list[dict[str, Any]] = []
        for o in outs:
            if type(o) is not torch.Tensor:
                described.append({"type": f"{type(o).__module__}.{type(o).__qualname__}"})
            else:
                described.append(
                    {
                        "type": "torch.Tensor",
                        "shape": list(o.shape),
                        "dtype": _dtype_name(o.dtype),
                        "device": o.device.type,
                    }
                )
        return described

    def _copy_out(self, out: Any, req: dict[str, Any]) -> list[dict[str, Any]]:
        """Describe the outputs and copy those that fit their region into the slab."""
        outs = tuple(out) if isinstance(out, tuple | list) else (out,)
        meta = self._describe(outs)
        views = self._views(req, "outputs")
        for o, m, v in zip(outs, meta, views, strict=False):
            if (
                m["type"] == "torch.Tensor"
                and m["shape"] == list(v.shape)
                and m["dtype"] == _dtype_name(v.dtype)
                and m["device"] == v.device.type
            ):
                v.copy_(o)
                m["copied"] = True
        self._sync()
        return meta

    def call(self, req: dict[str, Any]) -> dict[str, Any]:
        """One correctness call: inputs from the slab, outputs described and copied back."""
        from ksearch_agent.worker.session import (
            context_is_healthy,
            device_memory_note,
            failure_from,
            is_out_of_memory,
            poison_free_memory,
            release_cached_memory,
        )

        if self.loaded is None:
            return {"type": "called", "error": {"status": "RUNTIME_ERROR", "log": "no candidate loaded"}}
        fn = self._entry(req["axes"])
        args = self._views(req, "inputs")
        poison = int(req.get("poison_bytes", 64 << 20))
        try:
            poison_free_memory(self.device, poison)
        except Exception as exc:  # noqa: BLE001 - only running out of memory is expected here
            if not is_out_of_memory(exc):
                raise
            # Fail closed: without the poison an output left unwritten could hold an earlier result.
            return {
                "type": "called",
                "error": {
                    "status": "RUNTIME_ERROR",
                    "log": f"out of GPU memory before the call: {poison / 2**30:.2f} GiB of free memory could "
                    f"not be filled with NaNs ({device_memory_note(self.device)})",
                },
            }
        if self._shuffle is not None:
            self._shuffle(req.get("shuffle_seed"))
        t0 = self._perf()
        try:
            out, problems = self._run_call(fn, args, count=True)
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            fail = failure_from(exc, "running the candidate")
            fatal = fail.fatal or (self.device.type == "cuda" and not context_is_healthy(self.device))
            return {"type": "called", "error": {"status": fail.status, "log": fail.log, "fatal": fatal}}
        finally:
            if self._shuffle is not None:
                self._shuffle(None)
        seconds = self._perf() - t0
        meta = self._copy_out(out, req)
        del out
        # The judge makes the next trial's expected outputs next: the candidate's scratch, kept by the caching
        # allocator, must not leave the reference without the memory it needs.
        release_cached_memory(self.device)
        return {"type": "called", "seconds": seconds, "outputs": meta, "problems": problems}

    def time_call(self, req: dict[str, Any]) -> dict[str, Any]:
        """One timed call on the inputs the judge just wrote (and, flushed, after its L2 flush).

        Events bracket the call and a device-wide synchronize comes before the end event, so work left on
        other streams is counted; GPUMode's order (end event, then synchronize) is kept for that protocol.
        With ``null`` the callable is empty: the judge times those before any candidate is imported.
        """
        if self._event is None:
            return {"type": "timed", "error": {"status": "RUNTIME_ERROR", "log": "timing needs a GPU"}}
        t_in = self._perf()
        null = bool(req.get("null"))
        if not null and self.loaded is None:
            return {"type": "timed", "error": {"status": "RUNTIME_ERROR", "log": "no candidate loaded"}}
        fn: Callable[..., Any] = (lambda *a: None) if null else self._entry(req["axes"])
        args = [] if null else self._views(req, "inputs")
        flushed = req.get("protocol") != "gpumode"
        lead = req.get("lead_cycles") or 0
        if not isinstance(lead, int) or not 0 <= lead <= MAX_LEAD_CYCLES:
            return {"type": "timed", "error": {"status": "RUNTIME_ERROR", "log": f"bad lead_cycles {lead!r}"}}
        gate_us = req.get("gate_us") or 0
        if not isinstance(gate_us, int | float) or not 0 <= gate_us <= MAX_GATE_US:
            return {"type": "timed", "error": {"status": "RUNTIME_ERROR", "log": f"bad gate_us {gate_us!r}"}}
        gate = self._launch_gate() if flushed and gate_us else None
        self.last_out = None
        start, end = self._event(enable_timing=True), self._event(enable_timing=True)
        spun = self._event(enable_timing=True) if flushed and (lead or gate) else None
        before = self.watch.snapshot(children=False)
        # No garbage collection inside the timed region: the judge times the library and the reference with
        # its collector off, and a collection here would land on the candidate's figure alone.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        t_pre = self._perf()
        try:
            with self.torch.no_grad(), self.monitor.watch(ops=bool(req.get("count_ops"))) as record:
                self._sync()
                if spun is not None:
                    spun.record()
                if gate is not None:
                    gate.close(float(gate_us))
                elif spun is not None:
                    self.torch.cuda._sleep(lead)
                start.record()
                out = fn(*args)
                if gate is not None:
                    gate.open()
                if not flushed:
                    end.record()
                    self._sync()
                else:
                    self._sync()
                    end.record()
                end.synchronize()
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            from ksearch_agent.worker.session import context_is_healthy, failure_from

            fail = failure_from(exc, "timing the candidate")
            fatal = fail.fatal or not context_is_healthy(self.device)
            return {"type": "timed", "error": {"status": fail.status, "log": fail.log, "fatal": fatal}}
        finally:
            if gate is not None:
                gate.open()  # again if the call raised: a gate left shut would hold the GPU until its cap
            if gc_was_enabled:
                gc.enable()
        t_post = self._perf()
        ms = float(start.elapsed_time(end))
        problems = self._problems(before)
        if req.get("count_ops") and not null:
            problems += list(self.call_problems(record, self.language))
        self.last_out = out
        # Host time before and after the timed region, as this process saw it, and how long the GPU took
        # for the launch overlap's spin (longer than asked when its clocks are down): for diagnosis only.
        host = {
            "before_ms": (t_pre - t_in) * 1e3,
            "region_ms": (t_post - t_pre) * 1e3,
            "after_ms": (self._perf() - t_post) * 1e3,
            "spin_ms": float(spun.elapsed_time(start)) if spun is not None else None,
        }
        return {"type": "timed", "ms": ms, "problems": problems, "host": host}

    def _launch_gate(self) -> Any:
        """This process's launch gate (:mod:`ksearch_agent.worker.gate`), made on first use: the judge's empty
        calls come first, before any candidate is imported."""
        if self._gate is None:
            from ksearch_agent.worker.gate import Gate

            self._gate = Gate(self.device)
        return self._gate

    def export(self, req: dict[str, Any]) -> dict[str, Any]:
        """Copy the last timed call's outputs into the slab for the judge to check."""
        if self.last_out is None:
            return {
                "type": "exported",
                "error": {"status": "RUNTIME_ERROR", "log": "no timed output to export"},
            }
        out, self.last_out = self.last_out, None
        return {"type": "exported", "outputs": self._copy_out(out, req)}


MAX_LEAD_CYCLES = 10**9


def _sandbox_report() -> dict[str, Any]:
    """What confined this process: the judge starts it through ``python -m ksearch_agent.worker.sandbox``,
    which applies the sandbox and then execs this interpreter, and leaves its report in the environment.
    Started any other way (by hand, in a test), it confines itself here, later than it should."""
    import json

    text = os.environ.pop("KSEARCH_SANDBOX", "")
    if text:
        try:
            report = json.loads(text)
            if isinstance(report, dict):
                return report
        except ValueError:
            pass
    from ksearch_agent.worker.sandbox import restrict_self

    report = dict(restrict_self())
    report["late"] = True
    return report


def _die_with_parent() -> None:
    """SIGKILL this process when the judge that started it dies (it lives in its own session, so the
    judge's process-group kill does not reach it)."""
    import ctypes
    import signal

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(0)


def hot_wait_seconds(env: Mapping[str, str] = os.environ) -> float:
    """How long to poll for the next request before blocking (``HOT_WAIT_ENV``, ms; bad values mean 0)."""
    try:
        ms = float(env.get(HOT_WAIT_ENV, "0") or 0)
    except ValueError:
        return 0.0
    return min(ms, 1000.0) / 1e3 if ms > 0 else 0.0


def poll_readable(fd: int, seconds: float) -> bool:
    """Spin on ``fd`` for up to ``seconds`` without sleeping; True as soon as it has data to read."""
    deadline = time.perf_counter() + seconds
    while True:
        if select.select([fd], [], [], 0)[0]:
            return True
        if time.perf_counter() >= deadline:
            return False


def main(argv: list[str]) -> int:
    rfd, wfd, mode = int(argv[1]), int(argv[2]), argv[3]
    _die_with_parent()
    limit_resources()
    hot_wait = hot_wait_seconds()
    harness = protocol.start_with_hello(wfd, lambda: Harness(mode, wfd))
    if harness is None:
        return 2
    while True:
        if hot_wait:
            poll_readable(rfd, hot_wait)
        try:
            request = protocol.recv(rfd)
        except protocol.ChannelClosed:
            return 0
        try:
            reply = harness.handle(request)
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave the judge waiting
            reply = {
                "type": "error",
                "nonce": request.get("nonce"),
                "error": {
                    "status": "RUNTIME_ERROR",
                    "log": f"harness error: {type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}",
                },
            }
        sys.stdout.flush()
        sys.stderr.flush()
        protocol.send(wfd, reply)
        err = reply.get("error")
        if isinstance(err, dict) and err.get("fatal"):
            return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
