"""FIB Trace rows: one per workload of an evaluation, appended to a JSONL file FIB tools read.

FIB's statuses have no REJECTED or UNVERIFIED: a refused candidate is written as RUNTIME_ERROR with the
reason in its log, an unverified one is not written. ``reference_latency_ms`` is the definition's reference
timed in the same run; the library opponent's figures (when timed) go in the log line, since FIB's
Performance has no field for them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ksearch_agent.fib.workload import FibRandomInput, FibSafetensorsInput, FibScalarInput, FibWorkload
from ksearch_agent.results import EvalReport
from ksearch_agent.task import Task, Workload

FibStatus = Literal[
    "PASSED",
    "INCORRECT_SHAPE",
    "INCORRECT_NUMERICAL",
    "INCORRECT_DTYPE",
    "RUNTIME_ERROR",
    "COMPILE_ERROR",
    "TIMEOUT",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class FibCorrectness(_Model):
    max_relative_error: float = 0.0
    max_absolute_error: float = 0.0


class FibPerformance(_Model):
    latency_ms: float = Field(default=0.0, ge=0)
    reference_latency_ms: float = Field(default=0.0, ge=0)
    speedup_factor: float = Field(default=0.0, ge=0)


class FibEnvironment(_Model):
    hardware: str = Field(min_length=1)
    libs: dict[str, str] = Field(default_factory=dict)


class FibEvaluation(_Model):
    status: FibStatus
    environment: FibEnvironment
    timestamp: str = Field(min_length=1)
    log: str = ""
    correctness: FibCorrectness | None = None
    performance: FibPerformance | None = None


class FibTrace(_Model):
    definition: str = Field(min_length=1)
    workload: FibWorkload
    solution: str | None = None
    evaluation: FibEvaluation | None = None


ORIGINAL_WORKLOADS = "fib_workloads.jsonl"
"""The FIB workloads file a task was imported from, kept beside it so traces name the original rows."""


def _original_rows(task: Task) -> dict[str, FibWorkload]:
    from ksearch_agent.fib.workload import read_workloads

    path = task.directory / ORIGINAL_WORKLOADS
    if not path.is_file():
        return {}
    return {r.workload.uuid: r.workload for r in read_workloads(path)}


def fib_workload(task: Task, w: Workload, originals: dict[str, FibWorkload] | None = None) -> FibWorkload:
    """The FIB workload for one of our workloads: the original row when the task was imported from one,
    else its var axes and where each input comes from (synthesised index inputs are written as random)."""
    if originals and w.id in originals:
        return originals[w.id]
    inputs: dict[str, Any] = {}
    for name, spec in task.definition.inputs.items():
        init = w.inputs.get(name, spec.init)
        if spec.shape is None:
            value = init.value
            inputs[name] = FibScalarInput(
                type="scalar", value=float(value) if isinstance(value, str) else value
            )
        elif init.kind == "blob":
            inputs[name] = FibSafetensorsInput(
                type="safetensors", path=init.path, tensor_key=init.key or name
            )
        else:
            inputs[name] = FibRandomInput(type="random")
    return FibWorkload(uuid=w.id, axes=dict(w.axes), inputs=inputs)


def trace_rows(task: Task, report: EvalReport, solution_name: str, libs: dict[str, str]) -> list[FibTrace]:
    """FIB Trace rows for every workload of ``report`` that was checked (unverified ones are left out)."""
    if report.correctness.checked in ("compile_only", "screen") and report.status == "UNVERIFIED":
        return []
    timing = {t.workload: t for t in (report.profile.workloads if report.profile else [])}
    known = {w.id: w for w in task.workloads}
    originals = _original_rows(task)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    hardware = (
        report.profile.device if report.profile and report.profile.device else report.correctness.device
    )
    rows: list[FibTrace] = []
    for c in report.correctness.workloads:
        w = known.get(c.workload)
        if w is None:  # an unlisted shape drawn for this evaluation: not a FIB workload
            continue
        t = timing.get(c.workload)
        status = c.status if (t is None or c.status != "PASSED") else t.status
        log = c.log or (t.log if t else "")
        if status == "REJECTED":
            status, log = "RUNTIME_ERROR", f"[rejected by ksearch's judge] {log}"
        perf = None
        if t is not None and t.latency_ms:
            perf = FibPerformance(
                latency_ms=t.latency_ms,
                reference_latency_ms=t.reference_latency_ms or 0.0,
                speedup_factor=t.speedup or 0.0,
            )
            if t.library_latency_ms:
                log = (
                    f"library {t.library_latency_ms:.4f} ms (plan() outside the timer), "
                    f"{t.library_plan_latency_ms or 0.0:.4f} ms with plan(); {log}"
                ).rstrip("; ")
        rows.append(
            FibTrace(
                definition=task.name,
                workload=fib_workload(task, w, originals),
                solution=solution_name,
                evaluation=FibEvaluation(
                    status=status,  # type: ignore[arg-type]
                    environment=FibEnvironment(hardware=hardware or "unknown", libs=libs),
                    timestamp=stamp,
                    log=log[:4000],
                    correctness=FibCorrectness(
                        max_relative_error=c.max_rel_error or 0.0, max_absolute_error=c.max_abs_error or 0.0
                    ),
                    performance=perf,
                ),
            )
        )
    return rows


def append_traces(path: Path, rows: list[FibTrace]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r.model_dump(mode="json", exclude_none=True)) + "\n")
