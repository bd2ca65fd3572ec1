"""A deterministic chat model for tests: replays scripted answers, errors included, and records every prompt.

Graph and agent tests need to drive the LLM-facing code through the exact message shapes real models produce
(prose, tool calls, rate-limit errors) without a network. ``ScriptedChatModel`` is a real ``BaseChatModel``, so
callbacks, ``invoke`` on message lists and ``bind_tools`` behave as they do with ``ChatOpenAI``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

ScriptItem = str | AIMessage | BaseException


def _text_length(message: BaseMessage) -> int:
    """Characters of a message's content, whether a string or a list of content blocks."""
    content = message.content
    if isinstance(content, str):
        return len(content)
    return sum(len(b) if isinstance(b, str) else len(str(b.get("text", ""))) for b in content)


class ScriptedChatModel(BaseChatModel):
    """Answers each call with the next script item: a str (plain answer), an AIMessage (e.g. with tool_calls)
    or an exception instance (raised, to simulate rate limits and timeouts).

    ``calls`` holds the messages of every prompt received, ``bound_tools`` the names passed to ``bind_tools``.
    Running past the end of the script raises ``AssertionError("script exhausted: ...")``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] = Field(default_factory=list)
    index: int = 0
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)
    model_name: str = "scripted"
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, script: Sequence[ScriptItem] = (), **kwargs: Any) -> None:
        """Accept the script positionally: ``ScriptedChatModel(["first answer", RateLimitError(...)])``."""
        kwargs["script"] = list(script)
        super().__init__(**kwargs)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def remaining(self) -> int:
        """Script items not yet consumed."""
        return len(self.script) - self.index

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self.calls.append(list(messages))
            if self.index >= len(self.script):
                last = messages[-1].content if messages else ""
                raise AssertionError(
                    f"script exhausted: {len(self.script)} item(s) scripted, call #{len(self.calls)} "
                    f"got a prompt ending with {str(last)[:200]!r}"
                )
            item = self.script[self.index]
            self.index += 1
        if isinstance(item, BaseException):
            raise item
        message = AIMessage(content=item) if isinstance(item, str) else item
        if not isinstance(message, AIMessage):
            raise TypeError(f"script item must be str, AIMessage or an exception, got {type(item).__name__}")
        # Rough token counts (4 characters a token) unless the scripted message brings its own usage.
        prompt_tokens = sum(_text_length(m) for m in messages) // 4
        output_tokens = _text_length(message) // 4
        usage = message.usage_metadata or {
            "input_tokens": prompt_tokens,
            "output_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
        }
        message = message.model_copy(
            update={
                "usage_metadata": usage,
                "response_metadata": {**message.response_metadata, "model_name": self.model_name},
            }
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Record the tool names and return ``self``: scripted answers decide which tools get "called"."""
        self.bound_tools.extend(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self
