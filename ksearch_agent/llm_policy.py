"""The LLM policy: each LLM-facing step of the search as one prompt file and a robust parse.

Answers are parsed from prose or code fences; an unusable answer is sent back once with the parse error,
then given up on in a way the graph can carry on from (an unchanged tree, a failed attempt).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    messages_from_dict,
    messages_to_dict,
)

from ksearch_agent.coder_tools import TOOL_SCHEMAS
from ksearch_agent.llm.parsing import ParseError, extract_code_files, extract_json
from ksearch_agent.llm.usage import PriceTable, UsageLedger
from ksearch_agent.policy import CodeRequest, CoderTurn, CycleOutcome, RepairRequest, format_files, task_brief
from ksearch_agent.prompts import render
from ksearch_agent.task import Task
from ksearch_agent.world_model import EditOp, InsertNode, WorldModel, WorldModelError, parse_edit_script

T = TypeVar("T")


class PolicyError(RuntimeError):
    """The model could not produce a usable answer for a step the search cannot skip."""


def message_text(msg: BaseMessage) -> str:
    content = msg.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


class LLMPolicy:
    name = "llm"

    def __init__(
        self,
        model: BaseChatModel,
        model_name: str,
        prices: PriceTable | None = None,
        *,
        json_mode: bool = True,
    ) -> None:
        self.model, self.model_name, self.prices = model, model_name, prices or PriceTable()
        self.json_mode = json_mode

    def _system(self, language: str) -> SystemMessage:
        return SystemMessage(render("system", language="Triton" if language == "triton" else "CUDA"))

    def _invoke(
        self,
        node: str,
        messages: list[BaseMessage],
        ledger: UsageLedger,
        *,
        tools: bool = False,
        json: bool = False,
    ) -> AIMessage:
        model: Any = self.model.bind_tools(TOOL_SCHEMAS) if tools else self.model
        if json and self.json_mode:
            try:
                reply = model.bind(response_format={"type": "json_object"}).invoke(messages)
            except Exception as exc:  # a server without JSON mode answers 400: remember and ask plainly
                if not _is_bad_request(exc):
                    raise
                self.json_mode = False
                reply = model.invoke(messages)
        else:
            reply = model.invoke(messages)
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=message_text(reply))
        ledger.record(node, reply, self.model_name, self.prices)
        return reply

    def _ask(
        self,
        node: str,
        messages: list[BaseMessage],
        parse: Callable[[str], T],
        ledger: UsageLedger,
        what: str,
    ) -> T:
        reply = self._invoke(node, messages, ledger, json=True)
        try:
            return parse(message_text(reply))
        except (ParseError, WorldModelError) as exc:
            retry = [
                *messages,
                reply,
                HumanMessage(
                    f"That answer could not be used: {exc}\nReply again with {what}, complete and nothing else."
                ),
            ]
            return parse(message_text(self._invoke(node, retry, ledger, json=True)))

    # -- planner ------------------------------------------------------------------------------------

    def initial_world_model(self, task: Task, language: str, ledger: UsageLedger) -> WorldModel:
        messages = [
            self._system(language),
            HumanMessage(render("initial_world_model", task_brief=task_brief(task, language))),
        ]
        try:
            return self._ask(
                "planner",
                messages,
                lambda t: WorldModel.from_initial(_as_dict(extract_json(t))),
                ledger,
                "the world-model JSON",
            )
        except (ParseError, WorldModelError) as exc:
            raise PolicyError(f"the model did not produce a usable initial world model: {exc}") from exc

    def propose_actions(self, task: Task, wm: WorldModel, max_new: int, ledger: UsageLedger) -> list[EditOp]:
        messages = [
            self._system("triton"),
            HumanMessage(
                render("propose_actions", max_new=max_new, world_model=json.dumps(wm.prompt_view(), indent=1))
            ),
        ]
        try:
            ops, _ = self._ask(
                "planner",
                messages,
                lambda t: parse_edit_script(extract_json(t)),
                ledger,
                'the JSON {"ops": [...]}',
            )
        except (ParseError, WorldModelError):
            return []
        inserts: list[EditOp] = [op for op in ops if isinstance(op, InsertNode)]
        return inserts[:max_new]

    # -- coder and repair ---------------------------------------------------------------------------

    def coder_turn(self, req: CodeRequest, ledger: UsageLedger) -> CoderTurn:
        a = req.action.action
        assert a is not None
        if req.parent_files:
            start = (
                "Start from the parent kernel"
                + (f" (measured at {req.parent_speedup:.2f}x the reference)" if req.parent_speedup else "")
                + ":\n"
                + format_files(req.parent_files)
            )
        else:
            start = "There is no parent kernel: write it from the task definition."
        prompt = render(
            "coder",
            task_name=req.task.name,
            language=req.language,
            action_id=req.action.id,
            action_title=a.title,
            action_description=a.description,
            action_rationale=a.rationale,
            task_brief=task_brief(req.task, req.language),
            starting_point=start,
            tool_budget=req.tool_budget,
            cuda_files_hint=" and `kernel.cu`" if req.language == "cuda" else "",
        )
        messages: list[BaseMessage] = [
            self._system(req.language),
            HumanMessage(prompt),
            *messages_from_dict(req.transcript),
        ]
        reply = self._invoke("coder", messages, ledger, tools=req.tool_budget > 0)
        if reply.tool_calls and req.tool_budget > 0:
            calls = [
                {"id": c.get("id") or f"call_{i}", "name": c["name"], "args": c.get("args") or {}}
                for i, c in enumerate(reply.tool_calls)
            ]
            return CoderTurn(tool_calls=calls, transcript=messages_to_dict([reply]))
        return self._files_or_retry("coder", messages, reply, req.language, ledger)

    def repair(self, req: RepairRequest, ledger: UsageLedger) -> CoderTurn:
        a = req.action.action
        assert a is not None
        att = req.attempt
        if att["status"] != "PASSED":
            problem = f"It failed with status {att['status']}:\n{att['log'][-3000:]}"
        else:
            problem = (
                f"It is correct but runs at {att['geomean_speedup']:.3f}x the reference, not faster than its "
                f"parent ({req.parent_speedup or 1.0:.3f}x)."
            )
        prompt = render(
            "repair",
            action_id=req.action.id,
            action_title=a.title,
            task_name=req.task.name,
            problem=problem,
            files=format_files(req.files),
            parent_speedup=f"{req.parent_speedup or 1.0:.3f}",
        )
        messages: list[BaseMessage] = [self._system(req.language), HumanMessage(prompt)]
        return self._files_or_retry(
            "repair", messages, self._invoke("repair", messages, ledger), req.language, ledger
        )

    def _files_or_retry(
        self, node: str, messages: list[BaseMessage], reply: AIMessage, language: str, ledger: UsageLedger
    ) -> CoderTurn:
        lang: Any = language
        try:
            return CoderTurn(files=extract_code_files(message_text(reply), lang))
        except ParseError as exc:
            retry = [
                *messages,
                reply,
                HumanMessage(
                    f"I could not take code from that answer: {exc}\n"
                    "Answer with the complete files in fenced code blocks."
                ),
            ]
            second = self._invoke(node, retry, ledger)
            try:
                return CoderTurn(files=extract_code_files(message_text(second), lang))
            except ParseError as exc2:
                return CoderTurn(error=f"no usable code in the model's answer: {exc2}")

    # -- world model update -------------------------------------------------------------------------

    def update_world_model(
        self, task: Task, wm: WorldModel, outcome: CycleOutcome, ledger: UsageLedger
    ) -> tuple[list[EditOp], list[str]]:
        a = outcome.action.action
        best = outcome.best
        result = (
            f"solved: best attempt {best['candidate_id']} at {best['geomean_speedup']}x the reference"
            if best
            else "not solved: no attempt passed"
        )
        attempts = "\n".join(
            f"- {x['candidate_id']} ({x['origin']}): {x['status']}, speedup {x['geomean_speedup']}"
            f"{'; ' + x['log'][-300:] if x['status'] != 'PASSED' else ''}"
            for x in outcome.attempts
        )
        prompt = render(
            "world_model_update",
            action_id=outcome.action.id,
            action_title=a.title if a else "",
            expected_speedup=a.expected_speedup if a else "?",
            parent_speedup=outcome.parent_speedup or 1.0,
            outcome=result,
            attempts=attempts or "(none)",
            world_model=json.dumps(wm.prompt_view(), indent=1),
        )
        messages = [self._system("triton"), HumanMessage(prompt)]
        try:
            return self._ask(
                "world_model_update",
                messages,
                lambda t: parse_edit_script(extract_json(t)),
                ledger,
                'the JSON edit script {"ops": [...]}',
            )
        except (ParseError, WorldModelError) as exc:
            return [], [f"unparseable edit script, tree left as it was: {exc}"]


def _is_bad_request(exc: BaseException) -> bool:
    try:
        import openai

        return isinstance(exc, openai.BadRequestError) and "context" not in str(exc).lower()
    except ImportError:
        return False


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError("expected a JSON object with kernel_summary, open_questions and nodes")
    return value
