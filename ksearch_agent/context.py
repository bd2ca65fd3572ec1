"""Runtime settings of a kernel search (LangGraph ``context_schema``; Studio renders it as a form)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal


@dataclass(kw_only=True)
class SearchContext:
    """Everything a run can be tuned by; none of it is stored in graph state."""

    model: str | None = field(
        default_factory=lambda: os.environ.get("KSEARCH_MODEL"),
        metadata={"description": "chat model name on the endpoint (None: no LLM)"},
    )
    base_url: str | None = field(
        default_factory=lambda: os.environ.get("KSEARCH_BASE_URL"),
        metadata={"description": "OpenAI-compatible endpoint (vLLM, SGLang, Ollama, ...)"},
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"description": "env var holding the API key"}
    )
    temperature: float | None = field(
        default=None,
        metadata={
            "description": "sampling temperature sent to the model (None: the server's default; reasoning "
            "models such as o3 accept only that)"
        },
    )
    max_output_tokens: int | None = field(
        default=None,
        metadata={"description": "cap on the tokens of each answer (None: the server's limit)"},
    )
    reasoning_effort: str | None = field(
        default=None,
        metadata={
            "description": "reasoning effort for reasoning models: low, medium or high (None: default)"
        },
    )
    policy: Literal["llm", "playbook"] = "llm"
    max_rounds: int = field(default=5, metadata={"description": "search cycles (one action each)"})
    max_attempts: int = field(
        default=5,
        metadata={
            "description": "attempts per action in one cycle: the coder's first try plus repairs (at least 1)"
        },
    )
    stagnation_window: int = field(
        default=3,
        metadata={
            "description": "end a cycle early after this many attempts in a row that did not improve on "
            "the cycle's best (a failure, a repeat or a pass no faster than the best so far)"
        },
    )
    max_difficulty: int = 4
    max_tool_calls: int = field(
        default=4,
        metadata={
            "description": "tool calls per attempt, coder or repair (engine checks of the answered code when "
            "the endpoint has no tool calling)"
        },
    )
    language: Literal["triton", "cuda"] = "triton"
    max_wall_s: float | None = None
    max_tokens: int | None = None
    budget_usd: float | None = None
    json_mode: bool = field(
        default=True,
        metadata={
            "description": "ask for JSON answers with response_format=json_object (falls back if the server refuses)"
        },
    )
    price_table: str | None = field(default=None, metadata={"description": "JSON file of USD per 1M tokens"})
    runs_root: str = "runs"
    device: Literal["auto", "gpu", "cpu"] = "auto"
    trials: int = 2
    confirm_top: int = field(
        default=3,
        metadata={
            "description": "at the end, re-time this many top candidates side by side to name the best (< 2: off)"
        },
    )
    confirm_margin: float = field(
        default=0.10,
        metadata={
            "description": "only candidates whose speedup is within this fraction of the best's are re-timed"
        },
    )
    llm_timeout_s: float = field(
        default=600.0,
        metadata={"description": "seconds to wait for one answer of the model before giving up"},
    )
    llm_max_retries: int = field(
        default=5,
        metadata={
            "description": "retries of a request that timed out, was rate limited (429) or failed on the server "
            "(5xx), with exponential backoff, before the run stops with an endpoint error"
        },
    )
    recursion_limit: int = 400
    parallel: int | None = field(
        default=None,
        metadata={
            "description": "open actions worked at once, each its own coder/evaluate/repair cycle "
            "(None: one per GPU, 1 without a GPU)"
        },
    )
    backend: Literal["local", "ray"] = field(
        default="local",
        metadata={"description": "where evaluations run: this machine's GPUs, or a Ray cluster"},
    )
    ray_address: str | None = field(
        default=None, metadata={"description": "Ray cluster to join (None: RAY_ADDRESS, else a local Ray)"}
    )
