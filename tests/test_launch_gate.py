"""The launch gate's CPU-checkable parts: the kernel fills every SM, the setting is bounded and reaches the
worker, and the judge's sides that synchronize inside their call keep the spin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ksearch_agent.nvrtc import compile_cuda
from ksearch_agent.task import load_task
from ksearch_agent.worker.gate import BLOCKS_PER_SM, GATE_SOURCE, THREADS
from ksearch_agent.worker.profile_job import JUDGE_GATED_NULL, JUDGE_NULL, NULL_PREFIX, null_of

SM90_REGISTERS_PER_SM = 64 * 1024
SM90_THREADS_PER_SM = 2048


def test_the_gate_kernel_fits_two_full_blocks_on_every_sm_and_so_fills_it() -> None:
    binary = compile_cuda(GATE_SOURCE, name="ks_gate.cu", arch="sm_90a")
    (stats,) = binary.kernels
    assert BLOCKS_PER_SM * THREADS == SM90_THREADS_PER_SM  # every thread slot taken: no other block fits
    assert stats.registers * SM90_THREADS_PER_SM <= SM90_REGISTERS_PER_SM, (
        stats
    )  # and both blocks are resident
    assert stats.shared_bytes == 0 and stats.spill_stores == 0


@pytest.mark.parametrize("value", [-1.0, 100_001.0])
def test_a_task_rejects_a_launch_gate_out_of_range(value: float) -> None:
    definition = load_task("rmsnorm").definition
    with pytest.raises(ValidationError, match="launch_gate_us"):
        type(definition).model_validate({**definition.model_dump(), "launch_gate_us": value})


def test_the_judges_sides_that_synchronize_inside_their_call_keep_the_spin_under_a_gate() -> None:
    assert null_of("library", gated=True) == JUDGE_GATED_NULL
    assert null_of("reference", gated=True) == JUDGE_NULL
    assert null_of("library_plan", gated=True) == JUDGE_NULL
    assert null_of("candidate", gated=True) == NULL_PREFIX + "candidate"
    assert null_of("library") == JUDGE_NULL  # no gate: one fixed cost for every judge side, as before


def test_the_worker_spec_carries_the_tasks_launch_gate() -> None:
    task = load_task("rmsnorm")
    gated = task.model_copy(
        update={"definition": task.definition.model_copy(update={"launch_gate_us": 500.0})}
    )
    assert task.worker_spec()["launch_gate_us"] == 0.0
    assert gated.worker_spec()["launch_gate_us"] == 500.0
