"""Graph state: plain JSON-able data only. Sources, logs and reports live in the run directory by id."""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict


class SearchInput(TypedDict):
    """What a caller (or a parent graph) passes in."""

    task: str | dict[str, Any]
    seed_code: NotRequired[dict[str, str] | str | None]
    messages: NotRequired[list[Any]]
    run_id: NotRequired[str | None]
    continue_run: NotRequired[str | None]


class SearchOutput(TypedDict):
    """What a caller gets back."""

    best: dict[str, Any] | None
    eval_summary: dict[str, Any] | None
    world_model: dict[str, Any]
    status: str
    run_dir: str
    lineage: list[dict[str, Any]]
    unverified: NotRequired[list[str]]  # candidates that compiled but could not be checked or timed here


class Attempt(TypedDict):
    """One try at the cycle's action, as the loop routes on it.

    ``status`` is the evaluation's status, or ``REPEAT`` when the code is identical to an earlier candidate
    (``repeat_of`` names it; the earlier verdict is in ``log``), or ``UNVERIFIED`` when it compiled but
    correctness and speed could not be measured (CUDA on a machine without a GPU).
    """

    candidate_id: str
    origin: str  # "coder" or "repair"
    status: str
    geomean_speedup: float | None
    geomean_latency_ms: float | None
    log: str
    repeat_of: NotRequired[str]


class SearchState(TypedDict, total=False):
    task: str | dict[str, Any]
    seed_code: dict[str, str] | str | None
    messages: list[Any]
    run_id: str | None
    continue_run: str | None
    run_dir: str
    task_name: str
    task_ref: str
    started_at: float
    seed_candidate: str | None
    world_model: dict[str, Any]
    round: int
    action_id: str | None
    parent_candidate: str | None
    parent_speedup: float | None
    attempts: list[Attempt]
    no_improve: int
    pending: str | None
    pending_origin: str
    pending_repeat: bool  # the pending candidate's code is identical to an earlier, evaluated candidate
    tools_for: str | None  # the node ("coder" or "repair") whose tool calls coder_tools is running
    pending_tool_calls: list[dict[str, Any]]
    coder_transcript: list[dict[str, Any]]
    tool_calls_used: int
    best: dict[str, Any] | None
    eval_summary: dict[str, Any] | None
    usage: dict[str, Any]
    status: str
    lineage: list[dict[str, Any]]
    unverified: list[str]
