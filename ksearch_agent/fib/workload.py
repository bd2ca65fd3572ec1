"""FIB workload rows (JSONL): one concrete shape of a definition and where each input comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ksearch_agent.fib.errors import FibFileError, from_validation


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class FibRandomInput(_Model):
    type: Literal["random"]


class FibScalarInput(_Model):
    type: Literal["scalar"]
    value: int | float | bool


class FibSafetensorsInput(_Model):
    type: Literal["safetensors"]
    path: str = Field(min_length=1)
    tensor_key: str = Field(min_length=1)


FibInput = Annotated[FibRandomInput | FibScalarInput | FibSafetensorsInput, Field(discriminator="type")]


class FibWorkload(_Model):
    uuid: str = Field(min_length=1)
    axes: dict[str, Annotated[int, Field(ge=0)]]
    inputs: dict[str, FibInput]


class FibWorkloadRow(_Model):
    """One line of a workloads file: a Trace without a solution or an evaluation."""

    definition: str = Field(min_length=1)
    workload: FibWorkload
    solution: str | None = None
    evaluation: dict[str, object] | None = None


def read_workloads(path: Path) -> list[FibWorkloadRow]:
    """Every row of a FIB workloads JSONL file; :class:`FibFileError` names the line and the field."""
    if not path.is_file():
        raise FibFileError(path, "<file>", "file not found")
    rows: list[FibWorkloadRow] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise FibFileError(path, "<file>", "not UTF-8 text") from None
    for lineno, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FibFileError(path, f"<col {exc.colno}>", f"invalid JSON: {exc.msg}", lineno) from None
        try:
            rows.append(FibWorkloadRow.model_validate(data))
        except ValidationError as exc:
            raise from_validation(exc, path, lineno) from None
    if not rows:
        raise FibFileError(path, "<file>", "no workload rows")
    return rows
