"""The error every FIB reader raises: the file, the line for JSONL, and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ksearch_agent.task import TaskFileError


class FibFileError(TaskFileError):
    """A FIB file is missing or malformed. A :class:`TaskFileError`, so every command exits 2 on it."""

    def __init__(self, file: Path | str, field: str, message: str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(where, field, message)
        self.line = line


def from_validation(exc: ValidationError, file: Path | str, line: int | None = None) -> FibFileError:
    """The first problem pydantic found, as a :class:`FibFileError` naming its dotted field path."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # Union members add their tag to the path ("workload.inputs.q.random.type"): keep the data's path.
    tags = {"random", "scalar", "safetensors", "const", "var"}
    field = ".".join(p for p in loc if p not in tags) or "<root>"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return FibFileError(file, field, msg, line)


def read_json(path: Path) -> Any:
    import json

    if not path.is_file():
        raise FibFileError(path, "<file>", "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FibFileError(path, "<file>", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FibFileError(path, f"<line {exc.lineno} col {exc.colno}>", f"invalid JSON: {exc.msg}") from None
