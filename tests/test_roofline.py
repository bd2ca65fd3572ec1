"""The roofline floor as a forgery check: lenient enough for honest kernels whose writes stay in the L2,
strict enough for times no kernel could reach."""

from __future__ import annotations

from ksearch_agent.worker.profile_job import _roofline

CEILINGS = {"copy_gbps": 3000.0, "bf16_tflops": 780.0, "fp32_tflops": 50.0}
WORKLOAD = {"flops": 0.0, "bytes": 3e8}  # 0.1 ms at the measured copy bandwidth


def test_an_honest_memory_bound_kernel_slightly_faster_than_the_copy_floor_is_plausible() -> None:
    r = _roofline(WORKLOAD, 0.09, CEILINGS, "fp32")
    assert abs(r["floor_ms"] - 0.1) < 1e-9 and r["roofline_fraction"] > 1.1
    assert r["plausible"] is True


def test_a_time_a_third_of_the_floor_is_implausible() -> None:
    assert _roofline(WORKLOAD, 0.033, CEILINGS, "fp32")["plausible"] is False


def test_the_compute_floor_counts_when_it_is_the_higher_one() -> None:
    gemm = {"flops": 2 * 8192**3, "bytes": 3 * 8192 * 8192 * 2}
    r = _roofline(gemm, 0.5, CEILINGS, "bf16_tensor_core")  # 1.41 ms of bf16 work claimed in 0.5 ms
    assert r["floor_ms"] > 1.4 and r["plausible"] is False
