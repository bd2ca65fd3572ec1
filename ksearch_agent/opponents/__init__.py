"""Library opponents: a vendor kernel timed by the judge beside the candidate, in the same run.

An opponent is trusted library code (like the reference), so it runs in the judge itself. Its
``plan(inputs)`` does the library's host-side preparation for one set of inputs and returns the call that
computes the outputs; the judge times that call alone (the fair figure, used for the score) and, separately,
``plan`` + call together (how FlashInfer-Bench 0.1 timed the library). Without a GPU or without the library
the opponent is skipped, and the reason is reported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

OPPONENTS: dict[str, str] = {
    "flashinfer_gqa_paged_decode": "ksearch_agent.opponents.flashinfer_gqa_decode",
    "flashinfer_mla_paged_decode": "ksearch_agent.opponents.flashinfer_mla",
    "flashinfer_mla_paged_prefill": "ksearch_agent.opponents.flashinfer_mla",
    "flashinfer_moe_fp8_block_scale": "ksearch_agent.opponents.flashinfer_moe",
}
"""Opponent name -> module defining ``make(name, device) -> Opponent``."""

_BY_DEFINITION = {
    "gqa_paged_decode_h32_kv4_d128_ps1": "flashinfer_gqa_paged_decode",
    "mla_paged_decode_h16_ckv512_kpe64_ps1": "flashinfer_mla_paged_decode",
    "mla_paged_prefill_causal_h16_ckv512_kpe64_ps1": "flashinfer_mla_paged_prefill",
    "moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048": "flashinfer_moe_fp8_block_scale",
}


class OpponentUnavailable(Exception):
    """The opponent cannot run here (no GPU, library missing, unsupported device); the message says why."""


class Opponent(Protocol):
    name: str
    library: str
    """``package version`` of what is timed, for the report."""

    def plan(self, inputs: dict[str, Any]) -> Callable[[], Any]:
        """Host-side preparation for these inputs (named as in the definition, scalars as numbers);
        returns the call that computes the outputs, in the definition's order."""
        ...


def opponent_for(definition_name: str) -> str | None:
    """The opponent known for a FIB definition name, if any."""
    return _BY_DEFINITION.get(definition_name)


def load_opponent(name: str, device: Any) -> Opponent:
    """Make opponent ``name`` on ``device``; raises :class:`OpponentUnavailable` saying why it cannot run."""
    module_name = OPPONENTS.get(name)
    if module_name is None:
        raise OpponentUnavailable(f"unknown opponent {name!r} (known: {', '.join(sorted(OPPONENTS))})")
    if getattr(device, "type", "cpu") != "cuda":
        raise OpponentUnavailable(f"opponent {name} needs a GPU; skipped on {device}")
    module = importlib.import_module(module_name)
    opponent: Opponent = module.make(name, device)
    return opponent


def import_flashinfer() -> Any:
    """``flashinfer``, or :class:`OpponentUnavailable` naming how to install it."""
    try:
        return importlib.import_module("flashinfer")
    except Exception as exc:  # noqa: BLE001 - a broken install raises more than ImportError
        raise OpponentUnavailable(
            f"flashinfer is not importable ({type(exc).__name__}: {str(exc)[:200]}); "
            'install it with pip install "ksearch-agent[flashinfer]"'
        ) from None


def library_version(dist: str) -> str:
    from importlib import metadata

    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return f"{dist} (version unknown)"
