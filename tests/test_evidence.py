"""What the repair and world-model prompts are shown of an evaluation."""

from __future__ import annotations

from ksearch_agent.evidence import measured_evidence
from ksearch_agent.results import CorrectnessResult, EvalReport, ProfileResult, WorkloadTiming


def _report(library_ms: list[float | None]) -> EvalReport:
    rows = [
        WorkloadTiming(
            workload=f"w{i}",
            status="PASSED",
            latency_ms=0.020,
            reference_latency_ms=2.0,
            speedup=100.0,
            roofline_fraction=0.4,
            library_latency_ms=lib,
        )
        for i, lib in enumerate(library_ms)
    ]
    prof = ProfileResult(measured=True, device="stand-in", workloads=rows)
    prof.summarize()
    return EvalReport(
        task="t",
        candidate_id="c",
        language="triton",
        status="PASSED",
        correctness=CorrectnessResult(status="PASSED", checked="gpu", device="stand-in"),
        profile=prof,
    )


def test_a_task_with_a_library_opponent_shows_the_library_per_workload_and_the_score() -> None:
    text = measured_evidence(_report([0.030, 0.010]))
    assert "| library ms" in text
    assert "w0 | PASSED | 0.0200 | 2.0000 | 100.000 | 0.40 | 0.0300" in text
    assert "score against the library 100.0" in text  # mean of 1.5 and 0.5


def test_a_task_without_an_opponent_shows_no_library_column_or_score() -> None:
    text = measured_evidence(_report([None, None]))
    assert "library" not in text
    assert "w1 | PASSED | 0.0200 | 2.0000 | 100.000 | 0.40\n" in text + "\n"
