"""Typed results of the three tools and of a whole evaluation (all plain JSON when dumped)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal[
    "PASSED",
    "COMPILE_ERROR",
    "RUNTIME_ERROR",
    "INCORRECT_SHAPE",
    "INCORRECT_DTYPE",
    "INCORRECT_NUMERICAL",
    "TIMEOUT",
    "REJECTED",
]
OverallStatus = Literal[
    "PASSED",
    "COMPILE_ERROR",
    "RUNTIME_ERROR",
    "INCORRECT_SHAPE",
    "INCORRECT_DTYPE",
    "INCORRECT_NUMERICAL",
    "TIMEOUT",
    "REJECTED",
    "UNVERIFIED",
]

SEVERITY: dict[str, int] = {
    "PASSED": 0,
    "UNVERIFIED": 1,
    "INCORRECT_NUMERICAL": 2,
    "INCORRECT_DTYPE": 3,
    "INCORRECT_SHAPE": 4,
    "RUNTIME_ERROR": 5,
    "TIMEOUT": 6,
    "COMPILE_ERROR": 7,
    "REJECTED": 8,
}


def worst_status(statuses: list[Status]) -> OverallStatus:
    """PASSED only when every workload passed (and there was at least one)."""
    return max(statuses, key=lambda s: SEVERITY.get(s, 5)) if statuses else "UNVERIFIED"


def geomean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


class KernelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    local_bytes: int | None = None
    shared_bytes: int | None = None
    sass_instructions: int | None = None
    tensor_cores: bool | None = None
    hgmma: bool | None = None
    hmma: bool | None = None


class CompileResult(BaseModel):
    ok: bool
    status: Literal["OK", "COMPILE_ERROR", "RUNTIME_ERROR", "TIMEOUT"]
    language: str
    arch: str = "sm_90a"
    errors: list[str] = Field(default_factory=list)
    kernels: list[KernelInfo] = Field(default_factory=list)
    trace_error: str | None = None
    log: str = ""
    seconds: float = 0.0
    cached: bool = False


class WorkloadCorrectness(BaseModel):
    workload: str
    status: Status
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_index: list[int] | None = None
    trials: int = 0
    log: str = ""


class CorrectnessResult(BaseModel):
    status: OverallStatus
    checked: Literal["gpu", "interpreter", "compile_only", "screen"]
    device: str
    workloads: list[WorkloadCorrectness] = Field(default_factory=list)
    rejections: list[str] = Field(
        default_factory=list, description="why the candidate was refused as a cheat"
    )
    note: str = ""
    seconds: float = 0.0


class FixedCost(BaseModel):
    """The fixed cost subtracted from one side's timed calls on one workload."""

    ms: float = Field(
        description="per call: the median of the empty calls timed beside them, else the calibration"
    )
    null_calls: int = Field(
        description="empty calls timed beside the side's calls (0: the calibrated figure)"
    )


class WorkloadTiming(BaseModel):
    model_config = ConfigDict(extra="allow")
    workload: str
    status: Status
    latency_ms: float | None = None
    iqr_ms: float | None = None
    reference_latency_ms: float | None = None
    speedup: float | None = None
    baseline_latency_ms: float | None = None
    speedup_vs_baseline: float | None = None
    tflops: float | None = None
    gbps: float | None = None
    floor_ms: float | None = None
    roofline_fraction: float | None = None
    plausible: bool | None = None
    library_latency_ms: float | None = Field(
        default=None, description="the library opponent's call alone, plan() outside the timer (median)"
    )
    library_iqr_ms: float | None = Field(
        default=None, description="spread of the library's timed calls (interquartile range), as iqr_ms"
    )
    library_plan_latency_ms: float | None = Field(
        default=None, description="the library's plan() and call timed together (FlashInfer-Bench 0.1 style)"
    )
    library_status: str | None = Field(
        default=None, description="the library's own outputs checked against the reference"
    )
    library_log: str = ""
    fixed_costs: dict[str, FixedCost] = Field(
        default_factory=dict,
        description="per side (candidate, reference, library...): the fixed cost subtracted",
    )
    timed_calls: dict[str, int] = Field(
        default_factory=dict, description="per side: the calls whose times the medians are taken over"
    )
    log: str = ""


TimingProtocol = Literal["flushed", "hot", "gpumode"]
"""flushed (ours, the default and the score's): fresh inputs and a flushed L2 before every call; hot: the same
inputs every call and no flush, so what the previous call left in the L2 stays (FlashInfer's own "hot" figure,
for reference only); gpumode: GPUMode's timing, for comparison with its published numbers."""


class ProfileResult(BaseModel):
    measured: bool
    note: str = ""
    device: str = ""
    protocol: TimingProtocol = "flushed"
    workloads: list[WorkloadTiming] = Field(default_factory=list)
    geomean_latency_ms: float | None = None
    geomean_reference_ms: float | None = None
    geomean_speedup: float | None = None
    ceilings: dict[str, Any] = Field(default_factory=dict)
    sync_overhead_ms: float | None = None
    launch_overlap_us: float = Field(
        default=0.0,
        description="spin queued before each flushed call to hide host launch work (task setting)",
    )
    launch_gate_us: float = Field(
        default=0.0,
        description="the launch gate's cap when the task times behind a gate instead of the spin (task setting)",
    )
    counters: dict[str, Any] | None = Field(
        default=None, description="Nsight Compute counters when asked for"
    )
    opponent: dict[str, Any] | None = Field(
        default=None, description="the library opponent timed beside the candidate, or why it was skipped"
    )
    library_score: float | None = Field(
        default=None, description="K-Search score vs the library, plan() outside the timer (the fair one)"
    )
    library_score_with_plan: float | None = Field(
        default=None, description="the same score with the library's plan() inside its timed region"
    )
    seconds: float = 0.0

    def summarize(self) -> None:
        from ksearch_agent.fib.score import library_score

        self.library_score = library_score(self.workloads, with_plan=False)
        self.library_score_with_plan = library_score(self.workloads, with_plan=True)
        ok = [w for w in self.workloads if w.status == "PASSED" and w.latency_ms]
        if ok and len(ok) == len(self.workloads):
            self.geomean_latency_ms = geomean([w.latency_ms for w in ok if w.latency_ms])
            self.geomean_reference_ms = geomean(
                [w.reference_latency_ms for w in ok if w.reference_latency_ms]
            )
            self.geomean_speedup = geomean([w.speedup for w in ok if w.speedup])


class EvalReport(BaseModel):
    """Correctness then profile for one candidate on one task."""

    task: str
    candidate_id: str
    language: str
    status: OverallStatus
    correctness: CorrectnessResult
    profile: ProfileResult | None = None
    compile: CompileResult | None = None
    seconds: float = 0.0
