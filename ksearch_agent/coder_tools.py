"""The coder's tools as the LLM sees them (compile, run_correctness, profile_h100) and their execution.

Arguments are validated; a call with bad arguments comes back to the model as an error message naming
what was wrong, never as an exception in the graph.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ksearch_agent.candidate import Candidate, detect_api
from ksearch_agent.engine import Engine
from ksearch_agent.task import Task

_FILES = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "complete candidate files: file name -> source (run.py, and kernel.cu for CUDA)",
}
_WORKLOADS = {"type": "array", "items": {"type": "string"}, "description": "workload ids (default: all)"}

TOOL_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "compile",
            "description": "Compile every kernel for sm_90a; returns errors with source lines, "
            "registers, spills, shared memory and whether tensor cores are used.",
            "parameters": {"type": "object", "properties": {"files": _FILES}, "required": ["files"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "run_correctness",
            "description": "Check the candidate against the reference on the task's "
            "workloads; per-workload status, errors and a log.",
            "parameters": {
                "type": "object",
                "properties": {"files": _FILES, "workloads": _WORKLOADS},
                "required": ["files"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "profile_h100",
            "description": "Time the candidate against the reference on the H100 "
            "(latency, speedup, % of roofline per workload).",
            "parameters": {
                "type": "object",
                "properties": {"files": _FILES, "workloads": _WORKLOADS},
                "required": ["files"],
            },
        },
    },
]
TOOL_NAMES = [t["function"]["name"] for t in TOOL_SCHEMAS]


class ToolArgs(BaseModel):
    files: dict[str, str] = Field(min_length=1)
    workloads: list[str] | None = None


def candidate_from_files(files: dict[str, str], language: str) -> Candidate:
    entry = "run.py" if "run.py" in files else next((n for n in files if n.endswith(".py")), "")
    if not entry:
        raise ValueError("no Python entry file (run.py) among the files")
    if any(n.endswith(".cu") for n in files):
        language = "cuda"  # a .cu file decides, whatever language the search started in
    return Candidate(language=language, files=files, entry=entry, api=detect_api(files[entry]))  # type: ignore[arg-type]


def execute(call: dict[str, Any], task: Task, language: str, engine: Engine) -> str:
    """Run one tool call; the result is compact JSON text for a ToolMessage."""
    name = call.get("name")
    if name not in TOOL_NAMES:
        return f"error: unknown tool {name!r}; available: {', '.join(TOOL_NAMES)}"
    try:
        args = ToolArgs.model_validate(call.get("args") or {})
        cand = candidate_from_files(args.files, language)
        if args.workloads:
            task.select(args.workloads)
    except (ValidationError, ValueError, KeyError) as exc:
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        return f"error: invalid arguments for {name}: {detail}"
    if name == "compile":
        res = engine.compile(task, cand)
        return json.dumps(
            {
                "ok": res.ok,
                "errors": [e[-1500:] for e in res.errors],
                "trace_error": res.trace_error,
                "kernels": [k.model_dump(exclude_none=True) for k in res.kernels],
            }
        )
    if name == "run_correctness":
        corr = engine.run_correctness(task, cand, args.workloads)
        return json.dumps(
            {
                "status": corr.status,
                "checked": corr.checked,
                "note": corr.note,
                "workloads": [
                    {
                        "id": w.workload,
                        "status": w.status,
                        "max_abs_error": w.max_abs_error,
                        "log": w.log[-800:],
                    }
                    for w in corr.workloads
                ],
            }
        )
    prof = engine.profile(task, cand, args.workloads)
    return json.dumps(
        {
            "measured": prof.measured,
            "note": prof.note,
            "geomean_speedup": prof.geomean_speedup,
            "workloads": [
                {
                    "id": w.workload,
                    "status": w.status,
                    "latency_ms": w.latency_ms,
                    "speedup": w.speedup,
                    "roofline_fraction": w.roofline_fraction,
                    "log": w.log[-400:],
                }
                for w in prof.workloads
            ],
        }
    )
