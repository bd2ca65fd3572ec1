"""Prompt files, one per purpose, rendered with ``string.Template`` ($name placeholders)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

_DIR = Path(__file__).resolve().parent


@cache
def _load(name: str) -> Template:
    path = _DIR / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt named {name!r} in {_DIR}")
    return Template(path.read_text())


def render(name: str, **values: object) -> str:
    """Fill a prompt; a missing value is an error rather than a silent '$name' in the text."""
    return _load(name).substitute({k: str(v) for k, v in values.items()})
