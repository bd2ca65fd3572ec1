"""What an OpenAI-compatible endpoint's errors mean for a run: a refused parameter, or an endpoint failure.

Servers differ in what they accept. OpenAI's reasoning models refuse any temperature but the default, vLLM
started without ``--enable-auto-tool-choice`` refuses every request that carries tools, small local servers
refuse ``response_format``. Each answers HTTP 400 (OpenAI names the field in ``error.param``; vLLM only says
so in the message). :func:`refused_parameter` reads which of the parameters a request carried was refused, so
the caller can drop it and ask again.

Anything else the endpoint does wrong that asking again will not fix (nothing listening, unknown host, a
refused key, an unknown model, 5xx or 429 that outlasted the client's retries) becomes an
:class:`EndpointError`: one short message naming the URL, the model and the HTTP status, which the CLI
prints and exits 3 on, keeping everything already measured in the run. The message quotes the server, so it
is redacted when the error is made (:func:`~ksearch_agent.llm.redact.redact`): a server may repeat the key it
refused, and the error is stored in the run's checkpoints.
"""

from __future__ import annotations

from collections.abc import Collection

import openai
from langchain_core.exceptions import ContextOverflowError

from ksearch_agent.llm.redact import redact

__all__ = ["DROPPABLE", "EndpointError", "endpoint_error", "is_context_overflow", "refused_parameter"]

DROPPABLE = ("temperature", "response_format", "tools")
"""Request parameters a run can do without: dropped, and remembered, when the server refuses them."""

# Words a server uses for each droppable parameter when it does not fill in ``error.param``.
_MENTIONS = {
    "temperature": ("temperature",),
    "response_format": ("response_format", "response format", "json_object", "json mode"),
    "tools": ("tool_choice", "tool choice", "tool-call", "tool call", "tools", "function calling"),
}
_PARAM_ALIASES = {"tool_choice": "tools", "tools": "tools", "functions": "tools"}


class EndpointError(RuntimeError):
    """The LLM endpoint cannot serve this run; the message names the URL, the model and what went wrong.

    The message is redacted here, so no copy of an API key it quotes exists to be printed, logged or
    checkpointed.
    """

    def __init__(self, message: str, *, base_url: str, model: str, status: int | None) -> None:
        super().__init__(redact(message))
        self.base_url, self.model, self.status = base_url, model, status


def is_context_overflow(exc: BaseException) -> bool:
    """The prompt did not fit the model's context window (an attempt's failure, not the endpoint's)."""
    if isinstance(exc, ContextOverflowError):
        return True
    text = str(exc).lower()
    return "context_length" in text or "maximum context length" in text or "context window" in text


def refused_parameter(exc: BaseException, sent: Collection[str]) -> str | None:
    """Which of the droppable parameters in ``sent`` a 400/422 answer refuses, or None if it is not that.

    ``error.param`` decides when the server fills it in; otherwise the message is searched for the
    parameter's name (vLLM: ``"auto" tool choice requires --enable-auto-tool-choice ...``).
    """
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422):
        return None
    if is_context_overflow(exc):
        return None
    param = _PARAM_ALIASES.get(exc.param or "", exc.param)
    if param in sent and param in DROPPABLE:
        return param
    text = f"{exc.message} {exc.body}".lower()
    for name in DROPPABLE:
        if name in sent and any(word in text for word in _MENTIONS[name]):
            return name
    return None


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own explanation, short and redacted: ``error.message`` of the JSON body, else the SDK's
    message."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str) and message.strip():
            return redact(message.strip())[:300]
    return redact(exc.message)[:300]


def _connection_reason(exc: openai.APIConnectionError, timeout_s: float | None) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"no answer within the request timeout ({timeout_s:g} s; --request-timeout)"
            if timeout_s
            else ("the request timed out")
        )
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain and len(chain) < 10:
        chain.append(link)
        link = link.__cause__ or link.__context__
    text = " <- ".join(f"{type(e).__name__}: {e}" for e in chain)
    low = text.lower()
    if "name or service not known" in low or "nodename nor servname" in low or "getaddrinfo" in low:
        return "the host name does not resolve (DNS)"
    if "connection refused" in low or "connect call failed" in low or "errno 111" in low:
        return "connection refused: nothing is listening there"
    return f"cannot connect ({type(chain[-1]).__name__}: {redact(str(chain[-1]))[:200]})"


def endpoint_error(
    exc: BaseException, *, base_url: str | None, model: str, timeout_s: float | None = None
) -> EndpointError | None:
    """An :class:`EndpointError` for an endpoint failure that asking again will not fix, else None.

    Refused parameters and context overflows are not endpoint failures (None): the caller handles them.
    """
    url = base_url or "https://api.openai.com/v1"
    if isinstance(exc, openai.APIConnectionError):
        return EndpointError(
            f"LLM endpoint {url} (model {model}): {_connection_reason(exc, timeout_s)}",
            base_url=url,
            model=model,
            status=None,
        )
    if not isinstance(exc, openai.APIStatusError) or is_context_overflow(exc):
        return None
    status, said = exc.status_code, _server_message(exc)
    if status in (401, 403):
        what = "refused the API key (check the variable named by --api-key-env)"
    elif status == 404:
        what = "does not know this model, or the URL is not an OpenAI-compatible /v1 endpoint"
    elif status == 429:
        what = "kept answering 'rate limited' after the client's retries (--llm-retries)"
    elif status >= 500:
        what = "kept failing on its side after the client's retries (--llm-retries)"
    else:
        what = "refused the request"
    return EndpointError(
        f"LLM endpoint {url} (model {model}) answered HTTP {status}: {what}. Server said: {said}",
        base_url=url,
        model=model,
        status=status,
    )
