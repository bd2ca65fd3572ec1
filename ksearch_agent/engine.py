"""The evaluation engine: compile, run_correctness and profile through isolated workers.

The calling process never initialises CUDA and never runs candidate code. A long-lived *judge* per
device (``gpu``: one GPU; ``cpu``: Triton's interpreter) makes the inputs, runs the reference, compares
and writes the records; every candidate runs in a fresh *contestant* process the judge starts for it
(see :mod:`ksearch_agent.worker.correctness_job`). Compiling runs candidate code too (Triton launches are
traced), so each compile gets a fresh worker, with a spare kept starting. Whatever happens inside a
worker comes back as a status; nothing raises out of :meth:`Engine.run_correctness` or
:meth:`Engine.profile` because of candidate code. The engine is safe to call from many threads at
once: each device's judge serves one request at a time, and every record must carry its request's nonce
and name one of its workloads, exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import structlog

from ksearch_agent.candidate import Candidate
from ksearch_agent.reference_times import ReferenceTimes
from ksearch_agent.results import (
    CompileResult,
    CorrectnessResult,
    EvalReport,
    OverallStatus,
    ProfileResult,
    TimingProtocol,
    WorkloadCorrectness,
    WorkloadTiming,
    worst_status,
)
from ksearch_agent.screening import screen
from ksearch_agent.task import Task, TaskFileError, Workload
from ksearch_agent.worker.process import Spares
from ksearch_agent.worker.protocol import reference_key
from ksearch_agent.worker_process import WorkerDied, WorkerError, WorkerProcess, WorkerTimeout

log = structlog.get_logger("ksearch.engine")

DeviceChoice = Literal["auto", "gpu", "cpu"]


def default_cache_dir() -> Path:
    root = os.environ.get("KSEARCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ksearch"
    )
    return Path(root)


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible, decided without creating a CUDA context here."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    if not Path("/dev/nvidiactl").exists() and not Path("/dev/nvidia0").exists():
        return False
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return True
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


class ReferenceMismatch(TaskFileError):
    """The task's reference failed to load or disagrees with its own definition: the task is broken,
    and no candidate is blamed for it."""

    def __init__(self, task: Task, message: str) -> None:
        super().__init__(task.reference_path, "run", message)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


class Engine:
    """Evaluates candidates for tasks. Use as a context manager so workers are stopped."""

    def __init__(
        self,
        *,
        device: DeviceChoice = "auto",
        workdir: Path | None = None,
        cache_dir: Path | None = None,
        gpu_index: int | None = None,
        correctness_timeout: float | None = None,
        profile_timeout: float = 300.0,
        compile_timeout: float = 300.0,
        screening: bool = True,
        unlisted_shapes: int | None = None,
        reference_times: ReferenceTimes | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ksearch-engine-"))
        self.cache_dir = cache_dir or default_cache_dir()
        self.gpu_index = gpu_index
        self.requested_device = device
        self.correctness_timeout = correctness_timeout
        self.profile_timeout = profile_timeout
        self.compile_timeout = compile_timeout
        self._workers: dict[str, WorkerProcess] = {}
        self._spares: dict[str, Spares[WorkerProcess]] = {}
        self._lock = threading.RLock()  # guards the tables above and the mode decision
        self._busy = {"gpu": threading.Lock(), "cpu": threading.Lock()}  # one request at a time per judge
        self._mode: str | None = None
        self.screening = screening
        self.unlisted_shapes = unlisted_shapes
        # cached reference times handed to every judge (shared by the slots of one local backend)
        self.reference_times = reference_times or ReferenceTimes()
        self.notes: list[str] = []
        self.last_contestant: dict[
            str, Any
        ] = {}  # start-up and wait time of the last contestant, its sandbox

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.stop()
            self._workers.clear()
            for spare in self._spares.values():
                spare.close()
            self._spares.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- workers -----------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``gpu`` or ``cpu``: where correctness runs (and whether profiling is possible)."""
        with self._lock:
            return self._decide_mode()

    def _decide_mode(self) -> str:
        if self._mode is None:
            if self.requested_device == "cpu":
                self._mode = "cpu"
            elif self.requested_device == "gpu" or gpu_present():
                try:
                    self.worker("gpu")
                    self._mode = "gpu"
                except WorkerError as exc:
                    if self.requested_device == "gpu":
                        raise
                    self.notes.append(f"GPU worker unavailable ({exc}); using the CPU interpreter")
                    self._mode = "cpu"
            else:
                self._mode = "cpu"
        return self._mode

    def worker(self, mode: str) -> WorkerProcess:
        """The judge of ``mode`` (``gpu`` or ``cpu``), started if needed."""
        with self._lock:
            w = self._workers.get(mode)
            if w is None:
                w = WorkerProcess(mode, self.workdir / "workers", gpu_index=self.gpu_index)
                self._workers[mode] = w
            if not w.alive:
                w.start()
            return w

    def _fresh(self, mode: str) -> WorkerProcess:
        """A single-use worker (compile, reference checks): it may run untrusted code."""
        with self._lock:
            spares = self._spares.get(mode)
            if spares is None:
                spares = self._spares[mode] = Spares(
                    lambda n: WorkerProcess(
                        mode,
                        self.workdir / "workers",
                        gpu_index=self.gpu_index,
                        log_name=f"worker-{mode}-{n % 4}.log",
                    )
                )
        return spares.take()

    def _exchange(self, mode: str, request: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        """Send ``request`` to the judge of ``mode`` and return its messages up to ``done``. Messages that
        do not carry the request's nonce end the exchange as a broken channel."""
        nonce = secrets.token_hex(12)
        request = {**request, "nonce": nonce}
        with self._busy[mode]:
            worker = self.worker(mode)
            messages: list[dict[str, Any]] = []
            for msg in worker.request(request, timeout_per_message=timeout):
                if msg.get("nonce") != nonce:
                    worker.stop()
                    raise WorkerDied(
                        f"{mode} judge sent a message that does not belong to this request", worker.log_tail()
                    )
                messages.append(msg)
            return messages

    @property
    def device_name(self) -> str:
        if self.mode == "gpu":
            return str(self.worker("gpu").ready().get("device_name", "gpu"))
        return "cpu (Triton interpreter)"

    def _candidate_path(self, candidate: Candidate) -> Path:
        return candidate.materialize(self.workdir / "candidates")

    # -- compile -----------------------------------------------------------------------------------

    def compile(self, task: Task, candidate: Candidate, *, arch: str = "sm_90a") -> CompileResult:
        """Compile for sm_90a without a GPU; cached by content hash of sources, toolchain and arch."""
        with structlog.contextvars.bound_contextvars(task=task.name, candidate=candidate.id, stage="compile"):
            if candidate.language == "python":
                return CompileResult(
                    ok=True,
                    status="OK",
                    language="python",
                    arch=arch,
                    log="pure Python candidate: nothing to compile",
                )
            key = hashlib.sha256(
                json.dumps(
                    [
                        candidate.id,
                        arch,
                        task.name,
                        _version("triton"),
                        _version("nvidia-cuda-nvrtc"),
                        _version("cuda-core"),
                    ]
                ).encode()
            ).hexdigest()
            cache_file = self.cache_dir / "compile" / f"{key[:32]}.json"
            if cache_file.is_file():
                try:
                    cached = CompileResult.model_validate_json(cache_file.read_text())
                    cached.cached = True
                    log.info("compile cache hit", ok=cached.ok)
                    return cached
                except ValueError:
                    cache_file.unlink(missing_ok=True)
            entry = self._candidate_path(candidate)
            small = min(task.select(cpu=True) or task.workloads, key=lambda w: task.bytes(w))
            request = {
                "op": "compile",
                "language": candidate.language,
                "arch": arch,
                "candidate": {"path": str(entry), "api": candidate.api},
                "cuda_files": [str(entry.parent / n) for n in candidate.cuda_files],
                "task": task.worker_spec(),
                "workload": task.resolve(small),
            }
            t0 = time.perf_counter()
            worker = self._fresh("compile")  # tracing launches runs the candidate's code
            try:
                raw: dict[str, Any] = {}
                for msg in worker.request(request, timeout_per_message=self.compile_timeout):
                    if msg.get("type") == "done":
                        raw = msg.get("result") or {
                            "ok": False,
                            "status": "RUNTIME_ERROR",
                            "errors": [msg.get("error", "no result")],
                        }
            except WorkerTimeout as exc:
                raw = {
                    "ok": False,
                    "status": "TIMEOUT",
                    "errors": [f"{exc}; compile timeout {self.compile_timeout}s"],
                }
            except WorkerError as exc:
                raw = {"ok": False, "status": "RUNTIME_ERROR", "errors": [f"{exc}\n{exc.log_tail}"]}
            finally:
                worker.stop()
            allowed = set(CompileResult.model_fields) - {"language", "arch", "cached"}
            raw = {k: v for k, v in raw.items() if k in allowed}
            if raw.get("status") not in ("OK", "COMPILE_ERROR", "RUNTIME_ERROR", "TIMEOUT"):
                raw = {
                    "ok": False,
                    "status": "RUNTIME_ERROR",
                    "errors": ["the compile worker sent no usable result"],
                }
            raw.setdefault("seconds", time.perf_counter() - t0)
            result = CompileResult(language=candidate.language, arch=arch, **raw)
            if result.status in ("OK", "COMPILE_ERROR"):
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                cache_file.write_text(result.model_dump_json())
            log.info("compiled", ok=result.ok, kernels=len(result.kernels), seconds=round(result.seconds, 3))
            return result

    # -- correctness -------------------------------------------------------------------------------

    def run_correctness(
        self,
        task: Task,
        candidate: Candidate,
        workload_ids: list[str] | None = None,
        *,
        trials: int = 2,
        timeout: float | None = None,
    ) -> CorrectnessResult:
        with structlog.contextvars.bound_contextvars(
            task=task.name, candidate=candidate.id, stage="correctness"
        ):
            t0 = time.perf_counter()
            mode = self.mode
            workloads = task.select(
                workload_ids, cpu=mode == "cpu", role="correctness" if not workload_ids else None
            )
            if (rejected := self._screen(candidate, workloads, t0)) is not None:
                return rejected
            if not workload_ids:
                extra = (
                    self.unlisted_shapes if self.unlisted_shapes is not None else (1 if mode == "cpu" else 2)
                )
                workloads = workloads + task.unlisted_workloads(
                    extra, random.Random(secrets.randbits(32)), cpu=mode == "cpu"
                )
            if mode == "cpu" and candidate.language == "cuda":
                comp = self.compile(task, candidate)
                status: OverallStatus = "UNVERIFIED" if comp.ok else "COMPILE_ERROR"
                note = (
                    (
                        "CUDA candidates cannot run without a GPU: compile-checked only (NVRTC, sm_90a); "
                        "correctness was not verified"
                    )
                    if comp.ok
                    else "NVRTC compile failed"
                )
                failed = (
                    []
                    if comp.ok
                    else [
                        WorkloadCorrectness(
                            workload=w.id, status="COMPILE_ERROR", log="\n".join(comp.errors)[-3000:]
                        )
                        for w in workloads
                    ]
                )
                return CorrectnessResult(
                    status=status,
                    checked="compile_only",
                    device="cpu",
                    workloads=failed,
                    note=note,
                    seconds=time.perf_counter() - t0,
                )
            if mode == "cpu" and candidate.language == "triton":
                # The interpreter skips the compiler's checks: a real sm_90a compile comes first.
                comp = self.compile(task, candidate)
                if comp.status == "COMPILE_ERROR":
                    failed = [
                        WorkloadCorrectness(
                            workload=w.id, status="COMPILE_ERROR", log="\n".join(comp.errors)[-3000:]
                        )
                        for w in workloads
                    ]
                    return CorrectnessResult(
                        status="COMPILE_ERROR",
                        checked="interpreter",
                        device=self.device_name,
                        workloads=failed,
                        note="sm_90a compile failed",
                        seconds=time.perf_counter() - t0,
                    )
            limit = timeout or self.correctness_timeout or (120.0 if mode == "gpu" else 600.0)
            request = {
                "op": "correctness",
                "task": task.worker_spec(),
                "candidate": self._spec(candidate),
                "workloads": [task.resolve(w) for w in workloads],
                "trials": trials,
                "secret": secrets.randbits(62),
                "timeout": limit,
            }
            done: dict[str, Any] = {}
            rows = self._collect(task, mode, request, workloads, limit, done=done)
            if isinstance(done.get("contestant"), dict):
                self.last_contestant = dict(done["contestant"])
            results = [
                WorkloadCorrectness(**{k: v for k, v in r.items() if k in WorkloadCorrectness.model_fields})
                for r in rows
            ]
            note = ""
            if mode == "cpu":
                note = (
                    "checked on the CPU under the Triton interpreter (CPU workloads only: "
                    f"{', '.join(w.id for w in workloads)}); speed not measured"
                )
            res = CorrectnessResult(
                status=worst_status([r.status for r in results]),
                checked="gpu" if mode == "gpu" else "interpreter",
                device=self.device_name,
                workloads=results,
                note=note,
                seconds=time.perf_counter() - t0,
            )
            log.info("correctness", status=res.status, workloads=len(results), seconds=round(res.seconds, 2))
            return res

    def _screen(self, candidate: Candidate, workloads: list[Workload], t0: float) -> CorrectnessResult | None:
        """Refuse a candidate whose source shows a known cheat, before any of it runs."""
        if not self.screening:
            return None
        findings = screen(candidate)
        if not findings:
            return None
        reasons = [str(f) for f in findings]
        log.warning("rejected by the static screen", reasons=reasons)
        rows = [
            WorkloadCorrectness(
                workload=w.id, status="REJECTED", log="rejected: " + "; ".join(reasons)[:3000]
            )
            for w in workloads
        ]
        return CorrectnessResult(
            status="REJECTED",
            checked="screen",
            device=self.device_name,
            workloads=rows,
            rejections=reasons,
            note="rejected by the static screen before running",
            seconds=time.perf_counter() - t0,
        )

    def _spec(self, candidate: Candidate) -> dict[str, Any]:
        """What the judge passes to a contestant: where the files are, how to call them, and a Triton
        cache of the candidate's own (one candidate cannot plant binaries in another's cache by key).

        The cache lives in the engine's cache directory, named by the candidate's content hash, so it
        outlives the engine: evaluating the same candidate again (a second ``ksearch eval``, a resumed
        run, ``confirm_best``) loads its kernels instead of compiling them again, which on the H100 was
        most of a TriMul evaluation's extra cost after the judge/contestant split."""
        return {
            "path": str(self._candidate_path(candidate)),
            "api": candidate.api,
            "language": candidate.language,
            "triton_cache_dir": str(self.cache_dir / "triton" / candidate.id),
        }

    def _collect(
        self,
        task: Task,
        mode: str,
        request: dict[str, Any],
        workloads: list[Workload],
        timeout: float,
        *,
        done: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Run a per-workload request; a hang or crash becomes that workload's status, never an exception.

        Exactly one record per requested workload, in the judge's words: a record for a workload not
        asked for, a second record for one, or a workload left without a record is an incomplete result
        (RUNTIME_ERROR), never PASSED. A broken reference raises :class:`ReferenceMismatch`.
        """
        wanted = {w.id for w in workloads}
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        error: str | None = None
        # The judge's own waits on its contestant are bounded by ``timeout``; starting a contestant and
        # the reference's work come on top.
        limit = timeout + 240.0
        try:
            for msg in self._exchange(mode, request, limit):
                if msg.get("type") == "workload" and isinstance(msg.get("result"), dict):
                    row = msg["result"]
                    wid = row.get("workload")
                    if wid not in wanted or wid in seen:
                        error = (
                            f"[incomplete] the judge sent an unexpected record for workload {str(wid)[:60]!r}"
                        )
                        continue
                    seen.add(str(wid))
                    rows.append(row)
                    log.info("workload", workload=wid, status=row.get("status"))
                elif msg.get("type") == "done":
                    if msg.get("reference_problem"):
                        raise ReferenceMismatch(task, str(msg["reference_problem"]))
                    if msg.get("error"):
                        error = str(msg["error"])
                    if done is not None:
                        done.update(msg)
        except WorkerTimeout as exc:
            self._fill_missing(
                rows,
                workloads,
                "TIMEOUT",
                f"no result within {limit:.0f}s; the judge was killed and replaced. "
                f"Last output:\n{exc.log_tail[-1500:]}",
            )
        except WorkerError as exc:
            kind = "crashed" if isinstance(exc, WorkerDied) else "failed"
            self._fill_missing(
                rows,
                workloads,
                "RUNTIME_ERROR",
                f"the judge {kind} ({exc}) and was replaced. Last output:\n{exc.log_tail[-1500:]}",
            )
        if error is not None:
            self._fill_missing(rows, workloads, "RUNTIME_ERROR", error)
            if error.startswith("[incomplete]"):
                for row in rows:
                    if row.get("status") == "PASSED":
                        row.update(status="RUNTIME_ERROR", log=error)
        self._fill_missing(
            rows, workloads, "RUNTIME_ERROR", "[incomplete] the judge sent no record for this workload"
        )
        order = {w.id: i for i, w in enumerate(workloads)}
        rows.sort(key=lambda r: order.get(str(r.get("workload")), len(order)))
        return rows

    @staticmethod
    def _fill_missing(rows: list[dict[str, Any]], workloads: list[Workload], status: str, why: str) -> None:
        done = {r.get("workload") for r in rows}
        missing = [w for w in workloads if w.id not in done]
        for i, w in enumerate(missing):
            text = why if i == 0 else f"not run: evaluation stopped at workload {missing[0].id} ({status})"
            rows.append({"workload": w.id, "status": status, "log": text})

    # -- profile -----------------------------------------------------------------------------------

    def profile(
        self,
        task: Task,
        candidate: Candidate,
        workload_ids: list[str] | None = None,
        *,
        baseline: Candidate | None = None,
        protocol: TimingProtocol = "flushed",
        budget_ms: float = 500.0,
        reference_timing: Literal["interleaved", "cached"] | None = None,
        ncu: bool = False,
        timeout: float | None = None,
        opponent: bool = True,
    ) -> ProfileResult:
        with structlog.contextvars.bound_contextvars(task=task.name, candidate=candidate.id, stage="profile"):
            t0 = time.perf_counter()
            if self.mode != "gpu":
                return ProfileResult(
                    measured=False,
                    protocol=protocol,
                    device="cpu",
                    note="no GPU: speed was not measured",
                    opponent={"name": task.definition.opponent, "skipped": "no GPU: the library was not run"}
                    if task.definition.opponent
                    else None,
                )
            if self.screening and (findings := screen(candidate)):
                return ProfileResult(
                    measured=False,
                    protocol=protocol,
                    device=self.device_name,
                    note="rejected by the static screen: " + "; ".join(map(str, findings)),
                )
            workloads = task.select(workload_ids, role="benchmark" if not workload_ids else None)
            limit = timeout or self.profile_timeout
            timing = reference_timing or task.definition.reference_timing

            def ref_key(workload_id: str) -> str:
                return reference_key(task.name, workload_id, protocol, task.definition.launch_overlap_us)

            request: dict[str, Any] = {
                "op": "profile",
                "task": task.worker_spec(),
                "candidate": self._spec(candidate),
                "workloads": [task.resolve(w) for w in workloads],
                "secret": secrets.randbits(62),
                "protocol": protocol,
                "budget_ms": budget_ms,
                "reference_timing": timing,
                "reference_times": self.reference_times.known([ref_key(w.id) for w in workloads])
                if timing == "cached"
                else {},
                "ceilings_file": str(self.cache_dir / "ceilings.json"),
                "timeout": limit,
                "opponent": task.definition.opponent if opponent else None,
            }
            if baseline is not None:
                request["baseline"] = self._spec(baseline)
            done_msg: dict[str, Any] = {}
            rows = self._collect(task, "gpu", request, workloads, limit, done=done_msg)
            for r in rows:
                if timing == "cached" and isinstance(r.get("reference_stats"), dict):
                    self.reference_times.record(ref_key(str(r.get("workload"))), r["reference_stats"])
                log.info(
                    "timed",
                    workload=r.get("workload"),
                    status=r.get("status"),
                    latency_ms=r.get("latency_ms"),
                    speedup=r.get("speedup"),
                )
            if done_msg.get("slab_fallbacks"):
                log.warning(
                    "GPU slabs fell back to legacy CUDA IPC (large random gathers read several times slower)",
                    reasons=done_msg["slab_fallbacks"],
                )
            result = ProfileResult(
                measured=any(r.get("latency_ms") for r in rows),
                protocol=protocol,
                device=self.device_name,
                workloads=[
                    WorkloadTiming(**{k: v for k, v in r.items() if k not in ("stats", "reference_stats")})
                    for r in rows
                ],
                ceilings=done_msg.get("ceilings", {}),
                sync_overhead_ms=done_msg.get("sync_overhead_ms"),
                launch_overlap_us=float(done_msg.get("launch_overlap_us") or 0.0),
                launch_gate_us=float(done_msg.get("launch_gate_us") or 0.0),
                opponent=done_msg.get("opponent"),
                seconds=time.perf_counter() - t0,
            )
            result.summarize()
            if ncu:
                from ksearch_agent.ncu import collect

                result.counters = collect(
                    {k: request[k] for k in ("task", "candidate", "workloads")},
                    self.workdir / "ncu",
                    timeout=limit,
                )
            implausible = [w.workload for w in result.workloads if w.plausible is False]
            if implausible:
                result.note = f"implausible: faster than the roofline floor on {implausible}"
            log.info("profiled", geomean_speedup=result.geomean_speedup, seconds=round(result.seconds, 2))
            return result

    def check_reference(self, task: Task, *, timeout: float = 120.0) -> list[str]:
        """Problems found running the task's reference on its CPU workloads (empty: it runs and its outputs
        match the definition's shapes and dtypes). The reference runs in the CPU worker, isolated."""
        workloads = task.select(cpu=True) or task.workloads[:1]
        request = {
            "op": "check_reference",
            "task": task.worker_spec(),
            "secret": secrets.randbits(62),
            "workloads": [task.resolve(w) for w in workloads],
        }
        worker = self._fresh("compile")  # a reference under review is untrusted code: a single-use process
        try:
            for msg in worker.request(request, timeout_per_message=timeout):
                if msg.get("type") == "done":
                    return list(msg.get("problems") or ([msg["error"]] if msg.get("error") else []))
        except WorkerError as exc:
            return [f"the reference crashed or hung: {exc}"]
        finally:
            worker.stop()
        return ["no answer from the worker"]

    # -- both --------------------------------------------------------------------------------------

    def evaluate(
        self,
        task: Task,
        candidate: Candidate,
        workload_ids: list[str] | None = None,
        *,
        trials: int = 2,
        baseline: Candidate | None = None,
        protocol: TimingProtocol = "flushed",
        ncu: bool = False,
    ) -> EvalReport:
        """Correctness on every workload, then (only if all passed, on a GPU) the profile."""
        t0 = time.perf_counter()
        correctness = self.run_correctness(task, candidate, workload_ids, trials=trials)
        profile = None
        status = correctness.status
        if correctness.status == "PASSED":
            profile = self.profile(
                task, candidate, workload_ids, baseline=baseline, protocol=protocol, ncu=ncu
            )
            if profile.measured or profile.workloads:
                # A candidate that was right when checked but wrong, refused or crashing while timed fails.
                status = worst_status(["PASSED", *(w.status for w in profile.workloads)])
        return EvalReport(
            task=task.name,
            candidate_id=candidate.id,
            language=candidate.language,
            status=status,
            correctness=correctness,
            profile=profile,
            seconds=time.perf_counter() - t0,
        )
