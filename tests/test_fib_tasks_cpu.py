"""The bundled FlashInfer-Bench tasks: each loads, names K-Search's feedback workloads for the search, keeps
the rest out of it, and its Triton seed passes its CPU subset under the interpreter (a shuffled-order trial
included), through the real engine; the decode seeds' balanced chunk mapping covers every token once."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.knobs import render
from ksearch_agent.task import load_task

TASKS = Path(__file__).resolve().parent.parent / "tasks"
ATTENTION = {
    "gqa_paged_decode_h32_kv4_d128_ps1": 5,
    "mla_paged_decode_h16_ckv512_kpe64_ps1": 5,
    "mla_paged_prefill_causal_h16_ckv512_kpe64_ps1": 8,
}
MOE = "moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048"


@pytest.mark.parametrize(("name", "feedback"), [*ATTENTION.items(), (MOE, 5)])
def test_task_benchmarks_exactly_the_feedback_workloads_and_holds_out_the_rest(
    name: str, feedback: int
) -> None:
    task = load_task(TASKS / name)
    bench = task.select(role="benchmark")
    assert len(bench) == feedback
    fib_rows = [w for w in task.workloads if not w.cpu]
    assert {w.id for w in fib_rows} == {
        json.loads(line)["workload"]["uuid"] for line in (task.directory / "fib_workloads.jsonl").open()
    }
    assert len(fib_rows) > feedback and all(w.roles == ["holdout"] for w in fib_rows if w not in bench)
    assert task.definition.opponent is not None
    scalars = ["local_expert_offset", "routed_scaling_factor"] if name == MOE else ["sm_scale"]
    assert task.definition.scalar_inputs == scalars


@pytest.mark.slow
@pytest.mark.parametrize("name", ATTENTION)
def test_seed_passes_its_cpu_subset_under_the_interpreter(cpu_engine: Engine, name: str) -> None:
    task = load_task(TASKS / name)
    seed = Candidate.from_path(TASKS / name / "seeds" / "triton_split_kv.py")
    result = cpu_engine.run_correctness(task, seed)
    assert result.checked == "interpreter"
    assert [w.workload for w in result.workloads] == [w.id for w in task.select(cpu=True)]
    assert result.status == "PASSED", [(w.workload, w.status, w.log) for w in result.workloads]


def _seed_variant_verdict(engine: Engine, name: str, knobs: dict[str, object]) -> list[tuple[str, str, str]]:
    """Each CPU workload's (id, status, log) for the task's seed rendered with ``knobs``."""
    seed = TASKS / name / "seeds" / "triton_split_kv.py"
    variant = Candidate(
        language="triton", files={"variant.py": render(seed.read_text(), knobs)}, entry="variant.py"
    )
    result = engine.run_correctness(load_task(TASKS / name), variant)
    assert result.workloads
    return [(w.workload, w.status, w.log) for w in result.workloads]


def _failed(verdict: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [w for w in verdict if w[1] != "PASSED"]


@pytest.mark.slow
def test_gqa_seed_with_all_kv_heads_in_one_program_passes_its_cpu_subset(cpu_engine: Engine) -> None:
    knobs = {"ALL_HEADS": True, "NUM_WARPS": 8, "BLOCK_N": 16, "MIN_SPLIT_BLOCKS": 1}
    assert _failed(_seed_variant_verdict(cpu_engine, "gqa_paged_decode_h32_kv4_d128_ps1", knobs)) == []


# BLOCK_N 16 and one block per chunk: the CPU subset's sequences span several chunks and the grid has spare programs
BALANCED_CPU = {"BALANCED": True, "BLOCK_N": 16, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1}


@pytest.mark.slow
def test_gqa_seed_with_token_balanced_chunks_passes_its_cpu_subset(cpu_engine: Engine) -> None:
    assert _failed(_seed_variant_verdict(cpu_engine, "gqa_paged_decode_h32_kv4_d128_ps1", BALANCED_CPU)) == []


@pytest.mark.slow
def test_gqa_seed_with_balanced_chunks_over_all_kv_heads_passes_its_cpu_subset(cpu_engine: Engine) -> None:
    knobs = {**BALANCED_CPU, "ALL_HEADS": True, "NUM_WARPS": 8}
    assert _failed(_seed_variant_verdict(cpu_engine, "gqa_paged_decode_h32_kv4_d128_ps1", knobs)) == []


@pytest.mark.slow
@pytest.mark.parametrize("extra", [{}, {"PV_BF16X2": True}], ids=["fp32_values", "bf16x2_values"])
def test_mla_seed_with_token_balanced_chunks_passes_its_cpu_subset(
    cpu_engine: Engine, extra: dict[str, bool]
) -> None:
    knobs = {**BALANCED_CPU, **extra}
    assert _failed(_seed_variant_verdict(cpu_engine, "mla_paged_decode_h16_ckv512_kpe64_ps1", knobs)) == []


# Run in a child with TRITON_INTERPRET set before triton is imported (the interpreter must patch triton's own
# jit functions such as tl.cdiv): prints, per page table, the (sequence, lo, hi) each program of the grid gets.
_WORK_ITEMS = """
import importlib.util, itertools, json, sys
import torch, triton, triton.language as tl
spec = importlib.util.spec_from_file_location("seed", sys.argv[1])
seed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed)

@triton.jit
def probe(indptr_ptr, out_ptr, batch, chunk, BP: tl.constexpr):
    i = tl.program_id(0)
    b, lo, hi = seed._work_item(indptr_ptr, i, batch, chunk, BP)
    tl.store(out_ptr + i * 3, b)
    tl.store(out_ptr + i * 3 + 1, lo)
    tl.store(out_ptr + i * 3 + 2, hi)

found = []
for lengths in json.loads(sys.argv[2]):
    indptr = torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32)
    items = triton.cdiv(int(indptr[-1]), 16) + len(lengths)  # the grid the seed launches, chunks of 16 tokens
    out = torch.zeros(items * 3, dtype=torch.int32)
    probe[(items,)](indptr, out, len(lengths), 16, BP=triton.next_power_of_2(len(lengths) + 1))
    found.append(out.view(items, 3).tolist())
print(json.dumps(found))
"""


@pytest.mark.parametrize(
    "name", ["gqa_paged_decode_h32_kv4_d128_ps1", "mla_paged_decode_h16_ckv512_kpe64_ps1"]
)
def test_balanced_chunks_cover_every_token_once_and_spare_programs_take_none(name: str) -> None:
    tables = [[5, 40, 25], [0, 70, 0, 1], [16, 16], [100]]
    seed = TASKS / name / "seeds" / "triton_split_kv.py"
    child = subprocess.run(
        [sys.executable, "-c", _WORK_ITEMS, str(seed), json.dumps(tables)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TRITON_INTERPRET": "1"},
    )
    assert child.returncode == 0, child.stderr[-3000:]
    for lengths, programs in zip(tables, json.loads(child.stdout), strict=True):
        indptr = [0, *itertools.accumulate(lengths)]
        covered = [0] * indptr[-1]
        for b, lo, hi in programs:
            if b >= len(lengths):
                assert lo >= hi, (lengths, b, lo, hi)
                continue
            assert indptr[b] <= lo < hi <= indptr[b + 1] and hi - lo <= 16, (lengths, b, lo, hi)
            for t in range(lo, hi):
                covered[t] += 1
        assert covered == [1] * indptr[-1], lengths
