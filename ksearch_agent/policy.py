"""What the search graph asks of a policy, the LLM-facing steps, as plain typed calls.

Two policies implement it: the LLM policy (``llm_policy.py``) and the deterministic playbook policy.
The graph's nodes only route and record; every decision that needs judgement goes through here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.results import EvalReport
from ksearch_agent.state import Attempt
from ksearch_agent.task import Task, TensorSpec
from ksearch_agent.world_model import EditOp, Node, WorldModel


@dataclass
class CodeRequest:
    task: Task
    language: str
    action: Node
    parent_files: dict[str, str] | None
    parent_speedup: float | None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    tool_budget: int = 0


@dataclass
class RepairRequest:
    """Everything a repair reasons from: the task, the action's plan, the last attempt's files and what the
    evaluator measured for them (``report``: per-workload table, compile statistics), the cycle so far,
    and the tool conversation of this repair (``transcript``, ``tool_budget`` calls left)."""

    task: Task
    language: str
    action: Node
    files: dict[str, str]
    attempt: Attempt
    parent_speedup: float | None
    report: EvalReport | None = None
    cycle_best_speedup: float | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    tool_budget: int = 0


@dataclass
class CoderTurn:
    """Either complete files, or tool calls to run first; ``error`` when the answer was unusable.

    ``exhausted``: the policy has nothing further to try for this action (the playbook ran out of
    variants), so the cycle ends instead of recording an empty attempt.
    """

    files: dict[str, str] | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    exhausted: bool = False


@dataclass
class CycleOutcome:
    """One finished cycle: the action, its attempts and best pass, and each evaluated attempt's report
    (``reports`` by candidate id) so the update can compare the prediction with per-workload evidence."""

    action: Node
    parent_speedup: float | None
    attempts: list[Attempt]
    best: Attempt | None
    language: str = "triton"
    reports: dict[str, EvalReport] = field(default_factory=dict)


class Policy(Protocol):
    name: str

    def initial_world_model(self, task: Task, language: str, ledger: UsageLedger) -> WorldModel: ...

    def propose_actions(
        self, task: Task, language: str, wm: WorldModel, max_new: int, ledger: UsageLedger
    ) -> list[EditOp]: ...

    def coder_turn(self, req: CodeRequest, ledger: UsageLedger) -> CoderTurn: ...

    def repair(self, req: RepairRequest, ledger: UsageLedger) -> CoderTurn: ...

    def update_world_model(
        self, task: Task, wm: WorldModel, outcome: CycleOutcome, ledger: UsageLedger
    ) -> tuple[list[EditOp], list[str]]: ...


def _tensor_line(name: str, spec: TensorSpec) -> str:
    """``name[axes] dtype`` for a tensor, ``name: scalar dtype`` for a scalar input (FIB's ``shape: null``)."""
    if spec.shape is None:
        return f"{name}: scalar {spec.dtype}"
    return f"{name}[{', '.join(map(str, spec.shape))}] {spec.dtype}"


def task_brief(task: Task, language: str) -> str:
    """The task as an LLM should see it: definition, workloads, tolerance and the PyTorch reference."""
    d = task.definition
    lines = [
        f"name: {d.name} ({d.op_type})",
        f"description: {d.description}",
        "axes: "
        + ", ".join(f"{n}={a.value}" if a.type == "const" else f"{n} (varies)" for n, a in d.axes.items()),
        "inputs (in run() order): " + "; ".join(_tensor_line(n, s) for n, s in d.inputs.items()),
        "outputs: " + "; ".join(_tensor_line(n, s) for n, s in d.outputs.items()),
        f"tolerance: rtol={d.tolerance.rtol}, atol={d.tolerance.atol} (an element fails only if both are exceeded)",
        f"flops: {d.flops}; minimal bytes: {d.bytes}",
        "constraints: " + "; ".join(d.constraints),
        "benchmark workloads: " + "; ".join(json.dumps(w.axes) for w in task.select(role="benchmark")),
        f"language for this search: {language}",
        "",
        "PyTorch reference (reference.py):",
        "```python",
        task.reference_path.read_text().strip(),
        "```",
    ]
    return "\n".join(lines)


def format_files(files: dict[str, str]) -> str:
    fences = {".cu": "cuda", ".cuh": "cuda", ".py": "python"}
    out = []
    for name, text in files.items():
        lang = next((v for k, v in fences.items() if name.endswith(k)), "")
        out.append(f"`{name}`:\n```{lang}\n{text.rstrip()}\n```")
    return "\n\n".join(out)
