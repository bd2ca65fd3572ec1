"""What ``ksearch eval`` does with FIB files: a Solution JSON as the candidate, Trace rows as extra output."""

from __future__ import annotations

from pathlib import Path

from ksearch_agent.candidate import Candidate, CandidateError
from ksearch_agent.fib.solution import read_solution, to_candidate
from ksearch_agent.fib.trace import append_traces, trace_rows
from ksearch_agent.results import EvalReport
from ksearch_agent.task import Task


def candidate_from_solution(path: Path, task: Task) -> tuple[Candidate, str]:
    """Our candidate for a FIB Solution file written for ``task``, and the solution's name.

    Raises :class:`~ksearch_agent.fib.errors.FibFileError` for a malformed file and
    :class:`CandidateError` for a solution of another definition or one the engine cannot run."""
    solution = read_solution(path)
    if solution.definition != task.name:
        raise CandidateError(f"{path}: the solution is for {solution.definition!r}, not task {task.name!r}")
    d = task.definition
    inputs = {n: ([str(x) for x in s.shape] if s.shape is not None else None) for n, s in d.inputs.items()}
    outputs: dict[str, dict[str, object]] = {
        n: {"shape": [str(x) for x in s.shape or []], "dtype": s.dtype} for n, s in d.outputs.items()
    }
    consts = {n: int(a.value) for n, a in d.axes.items() if a.type == "const" and a.value is not None}
    return to_candidate(solution, inputs, outputs, consts, d.constraints), solution.name


def write_fib_trace(path: Path, task: Task, report: EvalReport, solution_name: str) -> int:
    """Append the report's FIB Trace rows to ``path``; returns how many were written."""
    from importlib import metadata

    libs = {}
    for dist in ("torch", "triton", "flashinfer-python"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    rows = trace_rows(task, report, solution_name, libs)
    append_traces(path, rows)
    return len(rows)
