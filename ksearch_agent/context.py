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
    temperature: float = 0.2
    reasoning_effort: str | None = None
    policy: Literal["llm", "playbook"] = "llm"
    max_rounds: int = field(default=5, metadata={"description": "search cycles (one action each)"})
    stagnation_window: int = 5
    max_difficulty: int = 4
    max_repairs: int = 3
    max_tool_calls: int = field(default=4, metadata={"description": "coder tool calls per attempt"})
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
    llm_timeout_s: float = 600.0
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
