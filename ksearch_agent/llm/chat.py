"""Chat models for the LLM policy: ChatOpenAI against any OpenAI-compatible endpoint, or a registered model.

Registered models (``register_model``) let a host application or a test supply any LangChain chat model
by name; everything else is built from the run's context.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from langchain_core.language_models import BaseChatModel

from ksearch_agent.context import SearchContext
from ksearch_agent.llm.redact import remember_key_in

_registry: dict[str, BaseChatModel] = {}
_cache: dict[tuple[Any, ...], BaseChatModel] = {}
_lock = threading.Lock()


class ModelNotConfigured(RuntimeError):
    """No model name was given for a policy that needs one."""


def register_model(name: str, model: BaseChatModel) -> None:
    with _lock:
        _registry[name] = model


def unregister_model(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def chat_model_for(ctx: SearchContext) -> BaseChatModel:
    if not ctx.model:
        raise ModelNotConfigured(
            "no model configured: pass --model NAME (with --base-url for vLLM, SGLang or Ollama) or set "
            "KSEARCH_MODEL, or use the playbook policy (--policy playbook), which needs no LLM"
        )
    remember_key_in(ctx.api_key_env)  # whatever the endpoint says back, the key in use is never written
    with _lock:
        if ctx.model in _registry:
            return _registry[ctx.model]
        key = (
            ctx.model,
            ctx.base_url,
            ctx.api_key_env,
            ctx.max_output_tokens,
            ctx.reasoning_effort,
            ctx.llm_timeout_s,
            ctx.llm_max_retries,
        )
        if key not in _cache:
            _cache[key] = _build_openai(ctx)
        return _cache[key]


def _build_openai(ctx: SearchContext) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    api_key = os.environ.get(ctx.api_key_env)
    if not api_key and ctx.base_url is None:
        raise ModelNotConfigured(
            f"model {ctx.model!r} needs an API key in ${ctx.api_key_env} (or a --base-url)"
        )
    # The temperature is not set here: the policy sends it per request, so that a server that refuses it
    # (reasoning models) can be asked again without it. Retries of 429/5xx/timeouts are the SDK's (it honours
    # Retry-After and backs off exponentially); what outlasts them ends the run with an endpoint error.
    kwargs: dict[str, Any] = {
        "model": ctx.model,
        "timeout": ctx.llm_timeout_s,
        "max_retries": ctx.llm_max_retries,
        # Non-OpenAI servers speak chat completions, not the Responses API, and only report usage when asked.
        "use_responses_api": False,
        "stream_usage": True,
        "api_key": api_key or "not-needed",
    }
    if ctx.base_url:
        kwargs["base_url"] = ctx.base_url
    if ctx.max_output_tokens:
        kwargs["max_tokens"] = ctx.max_output_tokens  # sent as max_completion_tokens
    if ctx.reasoning_effort:
        kwargs["reasoning_effort"] = ctx.reasoning_effort
    return ChatOpenAI(**kwargs)


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts and connection failures are worth retrying; anything else is not."""
    try:
        import openai

        if isinstance(exc, openai.RateLimitError | openai.APITimeoutError | openai.APIConnectionError):
            return True
        if isinstance(exc, openai.APIStatusError) and exc.status_code in (429, 500, 502, 503, 504):
            return True
    except ImportError:
        pass
    try:
        import httpx

        if isinstance(exc, httpx.TimeoutException | httpx.ConnectError | httpx.RemoteProtocolError):
            return True
    except ImportError:
        pass
    return isinstance(exc, TimeoutError | ConnectionError)


def is_context_length_error(exc: BaseException) -> bool:
    """The prompt did not fit the model's context window."""
    from ksearch_agent.llm.endpoint import is_context_overflow

    return is_context_overflow(exc)
