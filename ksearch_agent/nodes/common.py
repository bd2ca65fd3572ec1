"""What every node needs: the task, the policy, the run store, and progress events."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import openai
from langgraph.config import get_stream_writer

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.caller import REFUSAL_NOTES, CallSite, ModelCaller
from ksearch_agent.llm.chat import chat_model_for, is_context_length_error
from ksearch_agent.llm.redact import redact
from ksearch_agent.llm.transcript import TranscriptWriter
from ksearch_agent.llm.usage import PriceTable
from ksearch_agent.policy import Policy
from ksearch_agent.resources import store_for
from ksearch_agent.state import SearchState
from ksearch_agent.store import RunStore
from ksearch_agent.task import BUNDLED_TASKS_DIR, Task, load_task

PROMPT_REJECTED: tuple[type[Exception], ...] = (openai.BadRequestError,)
"""The model-call errors an LLM node expects and carries on from: the endpoint refused this one prompt
(too long for the context, or a request it cannot take). Retryable errors (rate limits, timeouts, 5xx)
go to the node's RetryPolicy; anything else (a dead endpoint, a bad key, a bug, a scripted test model
that ran out of answers) propagates and stops the run where it can be resumed."""


def rejection_reason(node: str, exc: Exception) -> str:
    """The failed attempt's log line for a prompt the endpoint refused."""
    reason = "the prompt exceeded the model's context length" if is_context_length_error(exc) else str(exc)
    return redact(f"the {node} model call failed: {type(exc).__name__}: {reason}")[:2000]


def policy_for(ctx: SearchContext, state: SearchState | None = None) -> Policy:
    """The run's policy; with ``state``, the LLM's exchanges go to the run's transcript and a parameter the
    endpoint refuses is noted in the run (event, run metadata) once."""
    from ksearch_agent.llm_policy import LLMPolicy, PolicyError

    if ctx.policy == "playbook":
        try:
            from ksearch_agent.playbook_policy import PlaybookPolicy  # type: ignore[import-not-found]
        except ImportError:
            raise PolicyError(
                "the playbook policy is not available in this version; use --policy llm with --model"
            ) from None
        return PlaybookPolicy()  # type: ignore[no-any-return]

    prices = PriceTable.from_file(ctx.price_table) if ctx.price_table else PriceTable()
    caller = ModelCaller(
        chat_model_for(ctx),
        ctx.model or "",
        base_url=ctx.base_url,
        prices=prices,
        temperature=ctx.temperature,
        json_mode=ctx.json_mode,
        timeout_s=ctx.llm_timeout_s,
    )
    if state is not None and state.get("run_dir"):
        caller.transcript = TranscriptWriter.for_key_env(state["run_dir"], ctx.api_key_env)
        caller.site = CallSite(round=state.get("round", 0), action=state.get("action_id"))
        caller.on_refusal = lambda param: _note_refusal(state, param)
    return LLMPolicy(chat_model_for(ctx), ctx.model or "", caller=caller)


def _note_refusal(state: SearchState, param: str) -> None:
    """Say once in the run (event and ``endpoint_refused`` metadata) what the endpoint refused."""
    store = store_of(state)
    refused = list(store.get_meta("endpoint_refused") or [])
    if param not in refused:
        store.set_meta("endpoint_refused", [*refused, param])
        emit(state, "endpoint_refused", parameter=param, note=REFUSAL_NOTES[param])


def task_of(state: SearchState) -> Task:
    spec = state.get("task_ref") or state["task"]
    if isinstance(spec, dict):
        spec = spec.get("directory") or spec["name"]
    return _load_cached(str(spec), _stamp(str(spec)))


def _stamp(spec: str) -> tuple[float, ...]:
    """Modification times of the task's files: a cached task is reused only while they are unchanged."""
    directory = Path(spec) if Path(spec).is_dir() else BUNDLED_TASKS_DIR / spec
    try:
        return tuple(p.stat().st_mtime for p in sorted(directory.glob("*")) if p.is_file())
    except OSError:
        return ()


@lru_cache(maxsize=32)
def _load_cached(spec: str, stamp: tuple[float, ...]) -> Task:
    """Every node needs the task; parsing and validating its files once per change is enough."""
    return load_task(spec)


def store_of(state: SearchState) -> RunStore:
    return store_for(state["run_dir"])


def emit(state: SearchState, kind: str, **data: Any) -> None:
    """A progress event: to the caller's stream (custom mode) and to the run's event log."""
    event = {"event": kind, "round": state.get("round", 0), **data}
    try:
        get_stream_writer()(event)
    except RuntimeError:  # not running inside a graph (direct calls in tests)
        pass
    store_of(state).log_event(state.get("round", 0), kind, data)
