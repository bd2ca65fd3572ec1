"""Safe evaluation of the small arithmetic expressions used in task files.

Task files describe flops, bytes and input scales as formulas over axis names
(``"2 * batch_size * hidden_size"``, ``"1/sqrt(hidden_dim)"``). They are parsed with ``ast`` and
only numbers, axis names, + - * / // % ** and a few math functions are allowed, so a task file can
never run code.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping

from ksearch_agent.pyparse import parse

_FUNCS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "min": min,
    "max": max,
    "ceil": math.ceil,
    "floor": math.floor,
    "log2": math.log2,
}
_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


class ExpressionError(ValueError):
    """An expression uses something other than arithmetic over known names."""


def names_in(expression: str) -> set[str]:
    """Return the free names an expression refers to (function names excluded)."""
    tree = _parse(expression)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called


def evaluate(expression: str | int | float, names: Mapping[str, float]) -> float:
    """Evaluate ``expression`` with ``names`` bound; numbers pass through unchanged."""
    if isinstance(expression, int | float):
        return expression
    return _eval(_parse(expression).body, names, expression)


def _parse(expression: str) -> ast.Expression:
    try:
        tree = parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {expression!r}: {exc.msg}") from None
    assert isinstance(tree, ast.Expression)
    return tree


def _eval(node: ast.AST, names: Mapping[str, float], src: str) -> float:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ExpressionError(f"unknown name {node.id!r} in expression {src!r}")
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, names, src), _eval(node.right, names, src))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, names, src)
        return -value if isinstance(node.op, ast.USub) else value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and not node.keywords
    ):
        return _FUNCS[node.func.id](*(_eval(a, names, src) for a in node.args))
    raise ExpressionError(f"unsupported construct {ast.dump(node)[:60]} in expression {src!r}")
