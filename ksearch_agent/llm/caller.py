"""One call to the chat model as the search makes it: parameters the server refused are dropped (and remembered
for the rest of the run), a truncated answer is returned with its finish reason instead of raised, every
exchange goes to the run's transcript, and endpoint failures become one :class:`EndpointError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
import structlog
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import BaseTool

from ksearch_agent.llm.endpoint import endpoint_error, refused_parameter
from ksearch_agent.llm.redact import redact
from ksearch_agent.llm.transcript import TranscriptWriter, message_view
from ksearch_agent.llm.usage import PriceTable, UsageLedger

__all__ = ["CallSite", "ModelCaller", "finish_reason", "forget_refusals", "refusals_of"]

_log = structlog.get_logger("ksearch.llm")
_refused: dict[tuple[str, str], set[str]] = {}
_refused_lock = threading.Lock()


def refusals_of(base_url: str | None, model: str) -> frozenset[str]:
    """The parameters this endpoint refused so far in this process (they are no longer sent)."""
    with _refused_lock:
        return frozenset(_refused.get((base_url or "", model), ()))


def _remember(base_url: str | None, model: str, param: str) -> bool:
    """Record a refusal; True when it is new (so it is announced once)."""
    with _refused_lock:
        seen = _refused.setdefault((base_url or "", model), set())
        if param in seen:
            return False
        seen.add(param)
        return True


def forget_refusals() -> None:
    """Clear what endpoints refused (tests that reuse an endpoint address)."""
    with _refused_lock:
        _refused.clear()


REFUSAL_NOTES = {
    "temperature": "the endpoint refused a temperature setting: the model's default is used",
    "response_format": "the endpoint has no JSON mode: JSON answers are asked for in the prompt only",
    "tools": "the endpoint has no tool calling: the coder answers with code, and the engine compiles and "
    "checks it and feeds the results back as text",
}


def finish_reason(message: AIMessage) -> str | None:
    """Why the model stopped ("stop", "length", "tool_calls", ...), when the server said."""
    reason = message.response_metadata.get("finish_reason")
    return str(reason) if reason else None


@dataclass(frozen=True)
class CallSite:
    """Where in the search an exchange happens, for the transcript."""

    round: int = 0
    action: str | None = None


@dataclass
class ModelCaller:
    """Calls ``model`` for the search's nodes with the run's settings; see the module docstring.

    ``temperature`` None leaves the server's default. ``on_refusal`` is told (once per parameter and
    endpoint) when a parameter is dropped, so the run can say so in its summary.
    """

    model: BaseChatModel
    model_name: str
    base_url: str | None = None
    prices: PriceTable = field(default_factory=PriceTable)
    temperature: float | None = None
    json_mode: bool = True
    timeout_s: float | None = None
    transcript: TranscriptWriter | None = None
    site: CallSite = field(default_factory=CallSite)
    on_refusal: Callable[[str], None] | None = None

    @property
    def tools_refused(self) -> bool:
        """The endpoint cannot take tool definitions: the coder must answer with code."""
        return "tools" in refusals_of(self.base_url, self.model_name)

    def _wanted(self, tools: Sequence[BaseTool], json: bool) -> dict[str, Any]:
        wanted: dict[str, Any] = {}
        if self.temperature is not None:
            wanted["temperature"] = self.temperature
        if json and self.json_mode:
            wanted["response_format"] = {"type": "json_object"}
        if tools:
            wanted["tools"] = list(tools)
        return wanted

    def _runnable(self, params: dict[str, Any]) -> Any:
        runnable: Any = self.model
        if "tools" in params:
            runnable = runnable.bind_tools(params["tools"])
        kwargs = {k: v for k, v in params.items() if k != "tools"}
        return runnable.bind(**kwargs) if kwargs else runnable

    def call(
        self,
        node: str,
        messages: list[BaseMessage],
        ledger: UsageLedger,
        *,
        tools: Sequence[BaseTool] = (),
        json: bool = False,
    ) -> AIMessage:
        """The model's answer; ``response_metadata["finish_reason"]`` says "length" when it was cut off.

        Raises :class:`EndpointError` for endpoint failures; other errors (a context overflow, a test
        model's own exceptions) propagate unchanged.
        """
        wanted = self._wanted(tools, json)
        while True:
            refused = refusals_of(self.base_url, self.model_name)
            params = {k: v for k, v in wanted.items() if k not in refused}
            dropped = sorted(set(wanted) - set(params))
            started = time.monotonic()
            try:
                reply = self._runnable(params).invoke(messages)
            except openai.LengthFinishReasonError as exc:  # JSON mode parses, and raises on a cut answer
                reply = _truncated_reply(exc)
            except Exception as exc:
                self._record(node, messages, params, dropped, None, started, error=exc)
                param = refused_parameter(exc, params)
                if param is not None:
                    self._refused(param, exc)
                    continue
                failure = endpoint_error(
                    exc, base_url=self.base_url, model=self.model_name, timeout_s=self.timeout_s
                )
                if failure is not None:
                    # Not chained: the SDK's exception carries the server's text unredacted (a key it
                    # repeats), and a traceback would print it; the failure's message says what it said.
                    raise failure from None
                raise
            if not isinstance(reply, AIMessage):
                reply = AIMessage(content=str(getattr(reply, "content", reply)))
            ledger.record(node, reply, self.model_name, self.prices)
            self._record(node, messages, params, dropped, reply, started)
            return reply

    def _refused(self, param: str, exc: BaseException) -> None:
        if _remember(self.base_url, self.model_name, param):
            _log.warning(
                "endpoint_refused_parameter",
                parameter=param,
                model=self.model_name,
                base_url=self.base_url,
                note=REFUSAL_NOTES[param],
                server_said=redact(str(exc))[:300],
            )
        if self.on_refusal is not None:
            self.on_refusal(param)

    def _record(
        self,
        node: str,
        messages: list[BaseMessage],
        params: dict[str, Any],
        dropped: list[str],
        reply: AIMessage | None,
        started: float,
        *,
        error: BaseException | None = None,
    ) -> None:
        if self.transcript is None:
            return
        usage: Mapping[str, Any] = (reply.usage_metadata or {}) if reply is not None else {}
        status = getattr(error, "status_code", None)
        self.transcript.write(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "node": node,
                "round": self.site.round,
                "action": self.site.action,
                "model": self.model_name,
                "base_url": self.base_url,
                "params": {k: (v if k != "tools" else [t.name for t in v]) for k, v in params.items()},
                "dropped": dropped,
                "messages": [message_view(m) for m in messages],
                "reply": message_view(reply) if reply is not None else None,
                "finish_reason": finish_reason(reply) if reply is not None else None,
                "usage": {
                    "input_tokens": int(usage.get("input_tokens") or 0),
                    "output_tokens": int(usage.get("output_tokens") or 0),
                },
                "latency_s": round(time.monotonic() - started, 3),
                "error": None
                if error is None
                else f"{type(error).__name__}"
                + (f" (HTTP {status})" if status else "")
                + f": {redact(str(error))}"[:2000],
            }
        )


def _truncated_reply(exc: openai.LengthFinishReasonError) -> AIMessage:
    """The partial answer carried by a LengthFinishReasonError, with its usage and finish reason."""
    completion = exc.completion
    content = completion.choices[0].message.content if completion.choices else ""
    usage = completion.usage
    reply = AIMessage(content=content or "", response_metadata={"finish_reason": "length"})
    if usage is not None:
        reply.usage_metadata = {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
    return reply
