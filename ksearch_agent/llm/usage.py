"""Token and cost accounting for LLM calls, per graph node, with budget checks.

The ledger is a pydantic model so that it can live in LangGraph state as a plain dict (``model_dump()``) and be
restored with ``UsageLedger.model_validate``. Prices are configuration, not truth: see :data:`DEFAULT_PRICES`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field

__all__ = ["DEFAULT_PRICES", "NodeUsage", "PriceTable", "UsageLedger", "budget_problem", "cost_text"]

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}
"""USD per 1M (input, output) tokens for a few common OpenAI model names.

Defaults only, copied from public list prices at one point in time: they may be out of date, ignore cached-input
discounts and say nothing about other providers. Override them with :meth:`PriceTable.from_file` or by passing
``prices`` to :class:`PriceTable`.
"""

# Characters that may separate a known model name from a version/date suffix ("gpt-4o-mini-2024-07-18").
_SUFFIX_SEPARATORS = ("-", ":", "@", "_")


def _check_price(value: Any) -> tuple[float, float] | None:
    """A valid (input, output) price pair, or None when ``value`` is not two finite non-negative numbers."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value
    ):
        return None
    return float(value[0]), float(value[1])


class PriceTable:
    """Maps model names to USD per 1M (input, output) tokens; unknown models have no price (None)."""

    def __init__(
        self, prices: Mapping[str, tuple[float, float]] | None = None, *, include_defaults: bool = True
    ) -> None:
        """Start from :data:`DEFAULT_PRICES` (unless ``include_defaults`` is False) and apply ``prices`` on top."""
        table: dict[str, tuple[float, float]] = dict(DEFAULT_PRICES) if include_defaults else {}
        for name, value in (prices or {}).items():
            checked = _check_price(value)
            if checked is None:
                raise ValueError(
                    f"price for {name!r} must be [input_usd_per_1m, output_usd_per_1m], got {value!r}"
                )
            table[name.lower()] = checked
        self.prices: dict[str, tuple[float, float]] = {k.lower(): v for k, v in table.items()}

    @classmethod
    def from_file(cls, path: str | Path, *, include_defaults: bool = True) -> PriceTable:
        """Load ``{"model": [input_usd_per_1m, output_usd_per_1m], ...}`` from a JSON file.

        Raises ValueError naming the file (and the offending key) when the content is not of that shape.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path}: not valid JSON ({err.msg} at line {err.lineno} col {err.colno})"
            ) from err
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object mapping model names to [input, output] prices")
        prices: dict[str, tuple[float, float]] = {}
        for key, value in data.items():
            checked = _check_price(value)
            if checked is None:
                raise ValueError(
                    f"{path}: price for {key!r} must be [input_usd_per_1m, output_usd_per_1m] "
                    f"(two non-negative numbers), got {value!r}"
                )
            prices[key] = checked
        return cls(prices, include_defaults=include_defaults)

    def lookup(self, model: str) -> tuple[float, float] | None:
        """Prices for ``model``: exact name, else the longest known name it starts with (before a separator).

        A provider prefix such as ``openai/gpt-4o`` is ignored when the full name is unknown.
        """
        for name in dict.fromkeys((model.lower(), model.lower().rsplit("/", 1)[-1])):
            if name in self.prices:
                return self.prices[name]
            best = max(
                (k for k in self.prices if name.startswith(k) and name[len(k)] in _SUFFIX_SEPARATORS),
                key=len,
                default=None,
            )
            if best is not None:
                return self.prices[best]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD for one call, or None when the model has no known price."""
        price = self.lookup(model)
        if price is None:
            return None
        return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


class NodeUsage(BaseModel):
    """Token counts of the LLM calls made by one graph node.

    ``cost_usd`` sums the calls whose model had a price; it is None while no call could be priced.
    ``unpriced_calls`` counts the calls left out of ``cost_usd``.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    unpriced_calls: int = 0


class UsageLedger(BaseModel):
    """Per-node LLM usage with totals and budget checks; JSON-able so it can sit in LangGraph state."""

    by_node: dict[str, NodeUsage] = Field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Number of LLM calls recorded."""
        return sum(u.calls for u in self.by_node.values())

    @property
    def input_tokens(self) -> int:
        """Prompt tokens over all nodes."""
        return sum(u.input_tokens for u in self.by_node.values())

    @property
    def output_tokens(self) -> int:
        """Completion tokens over all nodes."""
        return sum(u.output_tokens for u in self.by_node.values())

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def cost_usd(self) -> float:
        """USD of the calls with a known price (see :attr:`cost_complete`)."""
        return sum(u.cost_usd or 0.0 for u in self.by_node.values())

    @property
    def cost_complete(self) -> bool:
        """True when every recorded call was priced, i.e. :attr:`cost_usd` is the whole cost."""
        return all(u.unpriced_calls == 0 for u in self.by_node.values())

    @property
    def cost_label(self) -> str:
        """The cost as people should read it: see :func:`cost_text` ("cost unknown", never a false $0)."""
        unpriced = sum(u.unpriced_calls for u in self.by_node.values())
        return cost_text(self.cost_usd, unpriced, self.calls)

    def record(self, node: str, message: AIMessage | None, model_name: str, prices: PriceTable) -> None:
        """Add one call made by ``node``, reading token counts from ``message.usage_metadata``.

        A missing message or missing usage still counts the call (with 0 tokens) so call counts stay right.
        Falls back to OpenAI's raw ``response_metadata["token_usage"]`` when ``usage_metadata`` is absent.
        """
        input_tokens = output_tokens = 0
        if message is not None:
            usage: Mapping[str, Any] | None = message.usage_metadata
            if usage:
                input_tokens = int(usage.get("input_tokens") or 0)
                output_tokens = int(usage.get("output_tokens") or 0)
            else:
                raw = message.response_metadata.get("token_usage")
                if isinstance(raw, Mapping):
                    input_tokens = int(raw.get("prompt_tokens") or 0)
                    output_tokens = int(raw.get("completion_tokens") or 0)
        entry = self.by_node.setdefault(node, NodeUsage())
        entry.calls += 1
        entry.input_tokens += input_tokens
        entry.output_tokens += output_tokens
        cost = prices.cost(model_name, input_tokens, output_tokens)
        if cost is None:
            entry.unpriced_calls += 1
        else:
            entry.cost_usd = (entry.cost_usd or 0.0) + cost

    def over_budget(self, max_tokens: int | None, max_usd: float | None) -> str | None:
        """A reason string when the token or USD budget is reached or exceeded, else None (None = no limit).

        "Reached" counts: the check runs before the next call, and any call would go beyond the budget.
        The USD check uses only priced calls, and the reason says so when some calls could not be priced.
        """
        if max_tokens is not None and self.total_tokens >= max_tokens:
            return f"token budget exhausted: {self.total_tokens:,} tokens used of {max_tokens:,}"
        if max_usd is not None and self.cost_usd >= max_usd:
            unpriced = sum(u.unpriced_calls for u in self.by_node.values())
            extra = f" (plus {unpriced} calls with unknown prices)" if unpriced else ""
            return f"cost budget exhausted: ${self.cost_usd:.4f} spent of ${max_usd:.4f}{extra}"
        return None


def cost_text(cost_usd: float | None, unpriced_calls: int, calls: int) -> str:
    """How much the LLM cost, never claiming $0 for calls that had no price: "cost unknown" when no call
    was priced, "$x + unknown (N unpriced calls)" when some were not."""
    if calls and unpriced_calls >= calls:
        return "cost unknown"
    text = f"${cost_usd or 0.0:.4f}"
    return f"{text} + unknown ({unpriced_calls} unpriced calls)" if unpriced_calls else text


def budget_problem(model: str | None, budget_usd: float | None, prices: PriceTable) -> str | None:
    """Why ``--budget-usd`` cannot be kept for ``model`` (no price known for it), else None."""
    if budget_usd is None or not model or prices.lookup(model) is not None:
        return None
    return (
        f"--budget-usd {budget_usd:g} cannot be enforced: no price is known for model {model!r}. Give its price "
        f'with --price-table FILE (JSON {{"{model}": [usd_per_1M_input, usd_per_1M_output]}}) or leave the '
        "budget out (--max-tokens limits tokens whatever the price)"
    )
