"""FIB formats out and back in: a FIB Solution JSON is evaluated like any candidate (destination-passing
style included), ``--fib-trace`` appends valid Trace rows that name the original workload rows, and
``ksearch export RUN --fib`` writes a Solution that evaluates the same."""

from __future__ import annotations

import json
from pathlib import Path

from fib_toy import NAME, write_files
from test_fib_import import _cli

from ksearch_agent.candidate import Candidate
from ksearch_agent.fib.solution import FibSolution, from_candidate, to_candidate
from ksearch_agent.fib.trace import FibTrace
from ksearch_agent.results import CorrectnessResult, EvalReport, WorkloadCorrectness

DPS_KERNEL = """import torch


def toy_kernel(x, kv_indptr, kv_indices, scale, out):
    for b in range(kv_indptr.shape[0] - 1):
        lo, hi = int(kv_indptr[b]), int(kv_indptr[b + 1])
        out[b] = x[kv_indices[lo:hi].long()].sum(0) * scale
"""


def _solution(definition: str = NAME, **spec: object) -> dict[str, object]:
    return {
        "name": "toy_dps",
        "definition": definition,
        "author": "tests",
        "spec": {
            "language": "python",
            "target_hardware": ["cpu"],
            "entry_point": "kernel.py::toy_kernel",
            "destination_passing_style": True,
            **spec,
        },
        "sources": [{"path": "kernel.py", "content": DPS_KERNEL}],
    }


def _imported(tmp_path: Path) -> Path:
    definition, workloads, dataset = write_files(tmp_path)
    out = _cli(
        "tasks",
        "import",
        definition,
        "--workloads",
        workloads,
        "--blobs",
        dataset,
        "--into",
        "task",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    return tmp_path / "task"


def test_destination_passing_solution_passes_and_its_trace_rows_are_valid(tmp_path: Path) -> None:
    _imported(tmp_path)
    (tmp_path / "sol.json").write_text(json.dumps(_solution()))
    out = _cli("eval", "task", "sol.json", "--cpu", "--json", "--fib-trace", "traces.jsonl", cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "PASSED", out.stdout + out.stderr
    rows = [
        FibTrace.model_validate_json(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()
    ]
    assert [r.workload.uuid for r in rows] == ["uuid-blob"]  # the CPU subset: the workload that fits
    row = rows[0]
    assert row.solution == "toy_dps" and row.definition == NAME
    assert row.evaluation is not None and row.evaluation.status == "PASSED"
    assert row.workload.inputs["kv_indptr"].type == "safetensors"  # the original row, not a rewrite
    assert row.workload.inputs["scale"].value == 0.5  # type: ignore[union-attr]


def test_solution_for_another_definition_is_refused_with_exit_2(tmp_path: Path) -> None:
    _imported(tmp_path)
    (tmp_path / "sol.json").write_text(json.dumps(_solution(definition="gqa_paged_decode_h32_kv4_d128_ps1")))
    out = _cli("eval", "task", "sol.json", "--cpu", cwd=tmp_path)
    assert out.returncode == 2 and "not task 'toy_paged_sum_d4'" in out.stderr, out.stderr


def test_malformed_solution_is_refused_naming_the_field(tmp_path: Path) -> None:
    _imported(tmp_path)
    (tmp_path / "sol.json").write_text(json.dumps(_solution(entry_point="kernel.py")))
    out = _cli("eval", "task", "sol.json", "--cpu", cwd=tmp_path)
    assert out.returncode == 2 and "sol.json" in out.stderr and "spec.entry_point" in out.stderr, out.stderr


def test_cuda_solution_is_refused_as_not_runnable(tmp_path: Path) -> None:
    sol = FibSolution.model_validate(_solution(language="cuda"))
    try:
        to_candidate(sol, {}, {})
    except ValueError as exc:
        assert "only python and triton" in str(exc)
    else:
        raise AssertionError("a CUDA solution was accepted")


def test_exported_candidate_round_trips_to_the_same_candidate() -> None:
    seed = Path(__file__).resolve().parent.parent / "tasks" / "gqa_paged_decode_h32_kv4_d128_ps1" / "seeds"
    cand = Candidate.from_path(seed / "triton_split_kv.py")
    sol = from_candidate(cand, "gqa_paged_decode_h32_kv4_d128_ps1", name="x")
    assert sol.spec.entry_point == "triton_split_kv.py::run" and not sol.spec.destination_passing_style
    back = to_candidate(FibSolution.model_validate_json(sol.model_dump_json()), {}, {})
    assert back.id == cand.id


def test_export_fib_writes_the_best_candidate_as_a_solution(tmp_path: Path) -> None:
    from ksearch_agent.resources import store_for

    task_dir = _imported(tmp_path)
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    cand = Candidate(language="python", files={"run.py": (task_dir / "reference.py").read_text()})
    store = store_for(run_dir)
    store.set_meta("task", NAME)
    store.save_candidate(cand, round=1, action_node=None, parent_id=None, origin="test", attempt=1)
    store.save_evaluation(
        EvalReport(
            task=NAME,
            candidate_id=cand.id,
            language="python",
            status="PASSED",
            correctness=CorrectnessResult(
                status="PASSED",
                checked="interpreter",
                device="cpu",
                workloads=[WorkloadCorrectness(workload="uuid-blob", status="PASSED")],
            ),
        )
    )
    store.close()
    out = _cli("export", run_dir, "best.json", "--fib", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    sol = FibSolution.model_validate_json((tmp_path / "best.json").read_text())
    assert sol.definition == NAME and sol.spec.entry_point == "run.py::run"
    out = _cli("eval", "task", "best.json", "--cpu", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)["status"] == "PASSED", out.stdout + out.stderr
