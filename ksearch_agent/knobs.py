"""Knobs of a seed kernel: module-level constants (``K2_BLOCK_M = 128``) that playbook actions change.

Reading uses ``ast`` (only literal values count); writing replaces the right-hand side of the one
top-level assignment of that name, so the rest of the file is untouched.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ksearch_agent.pyparse import parse


class KnobError(ValueError):
    """A knob is missing from the source or its value is not a literal."""


def read_knobs(source: str, names: list[str] | None = None) -> dict[str, Any]:
    """Module-level UPPERCASE constants with literal values (all of them, or just ``names``)."""
    tree = parse(source)
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper() and (names is None or name in names):
                try:
                    found[name] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    missing = [n for n in names or [] if n not in found]
    if missing:
        raise KnobError(f"knobs {missing} are not literal module-level constants in the source")
    return found


def render(source: str, knobs: dict[str, Any]) -> str:
    """The source with each knob's assignment set to the given value."""
    out = source
    for name, value in knobs.items():
        pattern = re.compile(rf"^{re.escape(name)}\s*=.*$", re.M)
        if len(pattern.findall(out)) != 1:
            raise KnobError(f"knob {name!r} must be assigned exactly once at module level")
        out = pattern.sub(f"{name} = {value!r}", out)
    return out
