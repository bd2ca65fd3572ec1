"""kernel_chat: ask for a kernel in plain words; approve the task; get the search's answer.

intake → review (``interrupt`` in the action_requests / review_configs shape agent-chat-ui renders)
→ search (the ``kernel_search`` subgraph) → answer. Follow-ups in the same thread continue from the stored
run. Without a model, bundled tasks still run through the playbook policy; anything else gets a clear
answer that a model is needed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from ksearch_agent.chat import answer_text, follow_up, match_bundled
from ksearch_agent.context import SearchContext
from ksearch_agent.graphs.kernel_search import build_kernel_search_graph
from ksearch_agent.llm.chat import ModelNotConfigured, chat_model_for
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.resources import engine_for, store_for

ACTION = "run_kernel_search"


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    request: dict[str, Any] | None
    last_run: dict[str, Any] | None


def _say(text: str) -> dict[str, Any]:
    return {"messages": [AIMessage(content=text)], "request": None}


def intake(state: ChatState, runtime: Runtime[SearchContext]) -> Command[Literal["review", "__end__"]]:
    ctx = runtime.context or SearchContext()
    text = str(state["messages"][-1].content) if state.get("messages") else ""
    language = "cuda" if "cuda" in text.lower() else ctx.language
    request = follow_up(text, state.get("last_run"))
    if request is None and (name := match_bundled(text)):
        request = {"task": name, "language": language, "rounds": ctx.max_rounds}
    if request is None:
        try:
            model = chat_model_for(ctx)
        except ModelNotConfigured:
            return Command(
                goto="__end__",
                update=_say(
                    "That is not one of the bundled tasks (rmsnorm, softmax, trimul), and defining a new task needs an "
                    "LLM: configure a model (model / base_url in the run settings, or KSEARCH_MODEL)."
                ),
            )
        from ksearch_agent.task_writer import write_task

        task, problems = write_task(
            model, ctx.model or "", text, Path(ctx.runs_root) / "tasks", engine_for("cpu"), UsageLedger()
        )
        if task is None:
            return Command(
                goto="__end__",
                update=_say(
                    "I could not turn that into a valid task. What was still wrong:\n- "
                    + "\n- ".join(problems)
                ),
            )
        request = {"task": str(task.directory), "language": language, "rounds": ctx.max_rounds}
    return Command(goto="review", update={"request": request})


def review(state: ChatState) -> Command[Literal["search", "__end__"]]:
    request = dict(state.get("request") or {})
    decision = interrupt(
        {
            "action_requests": [
                {
                    "name": ACTION,
                    "args": request,
                    "description": f"Run a kernel search on {request.get('task')} in "
                    f"{request.get('language')} for {request.get('rounds')} rounds?",
                }
            ],
            "review_configs": [{"action_name": ACTION, "allowed_decisions": ["approve", "edit", "reject"]}],
        }
    )
    decisions = decision.get("decisions", [decision]) if isinstance(decision, dict) else list(decision or [])
    first: dict[str, Any] = (
        decisions[0] if decisions and isinstance(decisions[0], dict) else {"type": "reject"}
    )
    kind = first.get("type")
    if kind == "reject":
        reason = first.get("message") or "no reason given"
        return Command(goto="__end__", update=_say(f"Understood, no search was run ({reason})."))
    if kind == "edit":
        edited = (first.get("edited_action") or {}).get("args") or {}
        unknown = set(edited) - {"task", "language", "rounds", "continue_run"}
        if (
            unknown
            or edited.get("language", "triton") not in ("triton", "cuda")
            or int(edited.get("rounds", 1)) < 1
        ):
            return Command(
                goto="__end__",
                update=_say(
                    f"The edited task was not usable ({sorted(unknown) or edited}); nothing was run."
                ),
            )
        request.update(edited)
    elif kind != "approve":
        return Command(goto="__end__", update=_say(f"Unknown decision {kind!r}; nothing was run."))
    return Command(goto="search", update={"request": request})


def search(state: ChatState, runtime: Runtime[SearchContext]) -> dict[str, Any]:
    ctx = runtime.context or SearchContext()
    request = state["request"] or {}
    try:
        chat_model_for(ctx)
        policy = ctx.policy
    except ModelNotConfigured:
        policy = "playbook"
    run_ctx = dataclasses.replace(
        ctx, policy=policy, language=request["language"], max_rounds=int(request["rounds"])
    )
    payload: dict[str, Any] = {"task": request["task"]}
    if request.get("continue_run"):
        payload["continue_run"] = request["continue_run"]
    out = build_kernel_search_graph().invoke(payload, context=run_ctx)
    source = None
    if out.get("best"):
        cand = store_for(out["run_dir"]).load_candidate(out["best"]["candidate_id"])
        source = cand.files[cand.entry]
    text = answer_text({**request, "task": Path(request["task"]).name}, out, source)
    if policy == "playbook" and ctx.policy == "llm":
        text = "(No model is configured, so the built-in playbook policy ran this search.)\n\n" + text
    return {
        "messages": [AIMessage(content=text)],
        "request": None,
        "last_run": {
            "task": request["task"],
            "language": request["language"],
            "rounds": int(request["rounds"]),
            "run_dir": out["run_dir"],
        },
    }


def build_kernel_chat_graph(checkpointer: Any = None) -> Any:
    g = StateGraph(ChatState, context_schema=SearchContext)
    g.add_node("intake", intake)
    g.add_node("review", review)
    g.add_node("search", search)
    g.add_edge(START, "intake")
    return g.compile(checkpointer=checkpointer, name="kernel_chat")
