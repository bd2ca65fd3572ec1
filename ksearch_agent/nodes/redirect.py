"""Reuse a node in another graph whose node names differ: its ``Command.goto`` targets are renamed.

The parallel search runs the cycle nodes (coder, evaluate, repair) unchanged inside a branch, where the
cycle ends in ``cycle_done`` instead of ``world_model_update``, and the planner's ``coder`` becomes
``dispatch``. The renamed destinations are read from the node's ``Command[Literal[...]]`` return type, so
Studio draws the same edges as in the sequential graph.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Mapping
from typing import Any

from langgraph.types import Command


def destinations(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The node names in ``fn``'s ``Command[Literal[...]]`` return annotation (empty when it has none)."""
    ret = typing.get_type_hints(fn).get("return")
    names: list[str] = []
    for arg in typing.get_args(ret):
        names += [a for a in typing.get_args(arg) if isinstance(a, str)]
    return tuple(names)


def redirect(
    fn: Callable[..., Any], renames: Mapping[str, str]
) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """``fn`` with its goto targets renamed, and its renamed destinations (for ``add_node``)."""

    def rename(goto: Any) -> Any:
        if isinstance(goto, str):
            return renames.get(goto, goto)
        if isinstance(goto, list | tuple):
            return [rename(g) for g in goto]
        return goto

    @functools.wraps(fn)
    def node(state: Any, runtime: Any) -> Any:
        out = fn(state, runtime)
        if isinstance(out, Command):
            return dataclasses.replace(out, goto=rename(out.goto))
        return out

    node.__annotations__ = {"state": Any, "runtime": fn.__annotations__.get("runtime", Any), "return": Any}
    return node, tuple(renames.get(d, d) for d in destinations(fn))
