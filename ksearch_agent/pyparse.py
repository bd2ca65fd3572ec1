"""``ast.parse`` for a process whose threads parse at the same time (parallel cycles, the LangGraph server).

CPython 3.11 keeps the AST builder's recursion depth in per-interpreter state, so two threads turning source
into ``ast`` objects at once can corrupt it and raise a spurious ``SystemError: AST constructor recursion
depth mismatch`` (python/cpython#106905). One lock around every parse of ours keeps that from happening; it
costs nothing worth measuring next to an evaluation.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec") -> Any:
    """``ast.parse(source, filename, mode)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename, mode=mode)
