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

from ksearch_agent.evidence import measured_evidence
from ksearch_agent.llm.caller import ModelCaller, finish_reason
from ksearch_agent.llm.parsing import ParseError, extract_code_files, extract_json
from ksearch_agent.llm.usage import PriceTable, UsageLedger
from ksearch_agent.policy import CodeRequest, CoderTurn, CycleOutcome, RepairRequest, format_files, task_brief
from ksearch_agent.prompts import render
from ksearch_agent.pyparse import parse
from ksearch_agent.task import Task
from ksearch_agent.tools.llm_tools import ENGINE_CHECK, coder_tools, parse_problem
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
        caller: ModelCaller | None = None,
    ) -> None:
        """``caller`` carries the run's model settings, transcript and refusal memory; without it the model is
        called with defaults (tests, host applications)."""
        self.model, self.model_name = model, model_name
        self.caller = caller or ModelCaller(
            model, model_name, prices=prices or PriceTable(), json_mode=json_mode
        )

    def _system(self, language: str) -> SystemMessage:
        """The house rules for the run's language: every LLM step of a CUDA run is told it writes CUDA."""
        return SystemMessage(
            render(
                "system",
                language="Triton" if language == "triton" else "CUDA",
                kernel_rules=render(f"rules_{language}").rstrip(),
            )
        )

    def _invoke(
        self,
        node: str,
        messages: list[BaseMessage],
        ledger: UsageLedger,
        *,
        tools: bool = False,
        json: bool = False,
    ) -> AIMessage:
        return self.caller.call(node, messages, ledger, tools=coder_tools() if tools else (), json=json)

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
            if finish_reason(reply) == "length":  # cut off at the output limit: ask once for less
                retry = [*messages, HumanMessage(_SHORTER.format(what=what))]
            else:
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

    def propose_actions(
        self, task: Task, language: str, wm: WorldModel, max_new: int, ledger: UsageLedger
    ) -> list[EditOp]:
        messages = [
            self._system(language),
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
        if req.tool_budget > 0 and self.caller.tools_refused:
            prompt += _NO_TOOLS.format(checks=req.tool_budget)
        messages: list[BaseMessage] = [
            self._system(req.language),
            HumanMessage(prompt),
            *messages_from_dict(req.transcript),
        ]
        return self._turn_with_tools("coder", messages, req.tool_budget, req.transcript, req.language, ledger)

    def repair(self, req: RepairRequest, ledger: UsageLedger) -> CoderTurn:
        """Fix or speed up the last attempt from the task, the action's plan and what was measured; the
        tools are offered while the attempt's budget lasts, their results arriving in ``req.transcript``."""
        a = req.action.action
        assert a is not None
        att = req.attempt
        parent = f"{req.parent_speedup:.3f}x" if req.parent_speedup else "not measured"
        if att["status"] == "REPEAT":
            problem = f"That answer repeated earlier code: {att['log']}. Try something different."
            goal = "Write a version that differs from the earlier ones and implements the action."
        elif att["status"] != "PASSED":
            problem = f"It failed with status {att['status']}:\n{att['log'][-3000:]}"
            goal = "Fix the cause of the failure."
        else:
            best = req.cycle_best_speedup
            problem = (
                f"It is correct and runs at {att['geomean_speedup'] or 0:.3f}x the reference; the best of this "
                f"action so far is {f'{best:.3f}x' if best else 'that'}, its parent kernel {parent}."
            )
            goal = "Make it faster than the best so far, guided by the per-workload numbers."
        prompt = render(
            "repair",
            action_id=req.action.id,
            action_title=a.title,
            task_name=req.task.name,
            action_plan=(
                f"{a.title}: {a.description}\nRationale: {a.rationale or '-'}\n"
                f"Predicted speedup over the parent kernel ({parent}): {a.expected_speedup}x"
            ),
            problem=problem,
            evidence=measured_evidence(req.report),
            files=format_files(req.files) if req.files else "(none: the attempt produced no code)",
            task_brief=task_brief(req.task, req.language),
            goal=goal,
            tool_budget=req.tool_budget,
            cuda_files_hint=" and `kernel.cu`" if req.language == "cuda" else "",
        )
        if req.tool_budget > 0 and self.caller.tools_refused:
            prompt += _NO_TOOLS.format(checks=req.tool_budget)
        messages: list[BaseMessage] = [
            self._system(req.language),
            HumanMessage(prompt),
            *messages_from_dict(req.transcript),
        ]
        return self._turn_with_tools(
            "repair", messages, req.tool_budget, req.transcript, req.language, ledger
        )

    def _turn_with_tools(
        self,
        node: str,
        messages: list[BaseMessage],
        tool_budget: int,
        transcript: list[dict[str, Any]],
        language: str,
        ledger: UsageLedger,
    ) -> CoderTurn:
        """One coder or repair turn: tool calls while the budget lasts, else the files. On an endpoint
        without tool calling, new files go to the engine's own check first (its result comes back as text),
        and files the engine already checked are the submission."""
        use_tools = tool_budget > 0 and not self.caller.tools_refused
        reply = self._invoke(node, messages, ledger, tools=use_tools)
        if use_tools and (reply.tool_calls or reply.invalid_tool_calls):
            return CoderTurn(tool_calls=tool_calls_of(reply), transcript=messages_to_dict([reply]))
        turn, final = self._files_or_retry(node, messages, reply, language, ledger)
        if (
            turn.files is not None
            and tool_budget > 0
            and self.caller.tools_refused
            and turn.files != _last_checked_files(transcript, language)
        ):
            check = {
                "id": f"engine-check-{len(transcript)}",
                "name": ENGINE_CHECK,
                "args": {"files": turn.files},
            }
            return CoderTurn(tool_calls=[check], transcript=messages_to_dict([final]))
        return turn

    def _files_or_retry(
        self, node: str, messages: list[BaseMessage], reply: AIMessage, language: str, ledger: UsageLedger
    ) -> tuple[CoderTurn, AIMessage]:
        """Complete files from ``reply``, else from one more answer asked for with the reason; the turn and
        the answer it came from. A reply cut off at the output limit counts only if its files are complete."""
        try:
            return CoderTurn(files=_complete_files(reply, language)), reply
        except ParseError as exc:
            if finish_reason(reply) == "length":
                retry = [
                    *messages,
                    HumanMessage(_SHORTER.format(what="the complete files in fenced code blocks")),
                ]
            else:
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
                return CoderTurn(files=_complete_files(second, language)), second
            except ParseError as exc2:
                return CoderTurn(error=f"no usable code in the model's answer: {exc2}"), second

    # -- world model update -------------------------------------------------------------------------

    def update_world_model(
        self, task: Task, wm: WorldModel, outcome: CycleOutcome, ledger: UsageLedger
    ) -> tuple[list[EditOp], list[str]]:
        a = outcome.action.action
        prompt = render(
            "world_model_update",
            action_id=outcome.action.id,
            action_title=a.title if a else "",
            prediction=_prediction(outcome),
            outcome=_outcome(outcome),
            attempts=_attempt_evidence(outcome) or "(none)",
            world_model=json.dumps(wm.prompt_view(), indent=1),
        )
        messages = [self._system(outcome.language), HumanMessage(prompt)]
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


_SHORTER = (
    "Your previous answer was cut off at the output-token limit before it was complete. Answer again, "
    "shorter: {what}, with no explanation around it."
)
_NO_TOOLS = (
    "\n\nThis endpoint cannot call tools. Answer with the complete files instead: the engine compiles them and "
    "checks them against the reference and tells you the result (up to {checks} times); answer with the same "
    "files unchanged to submit them."
)


def _prediction(outcome: CycleOutcome) -> str:
    a = outcome.action.action
    parent = outcome.parent_speedup
    base = (
        f"the parent kernel at {parent:.3f}x the reference" if parent else "the reference (no parent timing)"
    )
    return f"{a.expected_speedup if a else '?'}x over {base}"


def _outcome(outcome: CycleOutcome) -> str:
    """The measured result set against the prediction, or why there is nothing to set against it."""
    best, a = outcome.best, outcome.action.action
    if best is None:
        if any(x["status"] == "UNVERIFIED" for x in outcome.attempts):
            return (
                "not measured: the kernel compiled, but correctness and speed could not be checked on this "
                "machine (no GPU); this is no evidence for or against the action"
            )
        return "not solved: no attempt passed"
    speed = best["geomean_speedup"]
    if speed is None:
        return f"solved by {best['candidate_id']}; speed not measured on this machine"
    relative = speed / (outcome.parent_speedup or 1.0)
    predicted = a.expected_speedup if a else None
    verdict = (
        ""
        if predicted is None
        else f" (predicted {predicted}x: {'met' if relative >= predicted else 'missed'})"
    )
    return f"solved by {best['candidate_id']} at {speed:.3f}x the reference = {relative:.3f}x over its parent{verdict}"


def _attempt_evidence(outcome: CycleOutcome) -> str:
    blocks = []
    for x in outcome.attempts:
        head = f"- {x['candidate_id']} ({x['origin']}): {x['status']}, speedup {x['geomean_speedup']}"
        if x["status"] == "REPEAT":
            blocks.append(f"{head}; {x['log']}")
            continue
        body = measured_evidence(outcome.reports.get(x["candidate_id"]))
        if x["status"] not in ("PASSED", "UNVERIFIED") and x["log"]:
            body = f"{x['log'][-300:]}\n{body}"
        blocks.append(head + "\n" + "\n".join("  " + line for line in body.splitlines()))
    return "\n".join(blocks)


def tool_calls_of(reply: AIMessage) -> list[dict[str, Any]]:
    """The reply's tool calls for the coder_tools node: valid ones with their arguments, unparseable ones
    (``invalid_tool_calls``) with ``invalid`` naming the parse problem, so each gets an answer."""
    calls: list[dict[str, Any]] = [
        {"id": c.get("id") or f"call_{i}", "name": c["name"], "args": c.get("args") or {}}
        for i, c in enumerate(reply.tool_calls)
    ]
    for i, bad in enumerate(reply.invalid_tool_calls):
        calls.append(
            {
                "id": bad.get("id") or f"invalid_{i}",
                "name": bad.get("name") or "?",
                "args": None,
                "invalid": parse_problem(bad.get("args")),
            }
        )
    return calls


def _complete_files(reply: AIMessage, language: str) -> dict[str, str]:
    """The files of ``reply``; when it was cut off at the output limit, only if every file is complete
    (Python parses, CUDA braces balance), since a truncated kernel cannot be the model's intent."""
    lang: Any = language
    files = extract_code_files(message_text(reply), lang)
    if finish_reason(reply) == "length":
        for name, text in files.items():
            if name.endswith(".py"):
                try:
                    parse(text)
                except SyntaxError as exc:
                    raise ParseError(f"{name} was cut off at the output limit ({exc.msg})") from None
            elif text.count("{") != text.count("}"):
                raise ParseError(f"{name} was cut off at the output limit (unbalanced braces)")
    return files


def _last_checked_files(transcript: list[dict[str, Any]], language: str) -> dict[str, str] | None:
    """The files the engine last checked for this attempt (from the model's last text answer), if any."""
    for msg in reversed(messages_from_dict(transcript)):
        if isinstance(msg, AIMessage):
            try:
                lang: Any = language
                return extract_code_files(message_text(msg), lang)
            except ParseError:
                return None
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError("expected a JSON object with kernel_summary, open_questions and nodes")
    return value
