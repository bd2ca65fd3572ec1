"""FIB Definition JSON: an operator's axes, inputs, outputs, constraints and Python reference."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ksearch_agent.fib.errors import FibFileError, from_validation, read_json

FibDType = Literal[
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "float8_e4m3fn",
    "float8_e5m2",
    "float4_e2m1",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class FibAxisConst(_Model):
    type: Literal["const"]
    value: int = Field(ge=0)
    description: str | None = None


class FibAxisVar(_Model):
    type: Literal["var"]
    description: str | None = None


class FibTensor(_Model):
    shape: list[str] | None = Field(description="axis names; null for a scalar")
    dtype: FibDType
    description: str | None = None


class FibDefinition(_Model):
    name: str = Field(min_length=1)
    op_type: str = Field(min_length=1)
    axes: dict[str, FibAxisConst | FibAxisVar]
    inputs: dict[str, FibTensor]
    outputs: dict[str, FibTensor]
    reference: str = Field(min_length=1, description="Python source defining run(...)")
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    constraints: list[str] = Field(default_factory=list)

    @field_validator("constraints", "tags", mode="before")
    @classmethod
    def _null_is_empty(cls, v: object) -> object:
        return [] if v is None else v

    @model_validator(mode="after")
    def _consistent(self) -> FibDefinition:
        for kind, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            for name, spec in specs.items():
                for dim in spec.shape or []:
                    if dim not in self.axes:
                        raise ValueError(f"{kind}.{name}.shape: unknown axis {dim!r}")
        if "def run(" not in self.reference:
            raise ValueError("reference: the reference source must define run(...)")
        return self


def read_definition(path: Path) -> FibDefinition:
    """Read and validate a FIB Definition JSON file; :class:`FibFileError` names the field on bad input."""
    data = read_json(path)
    try:
        return FibDefinition.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, path) from None


def reference_name_ok(name: str) -> bool:
    """FIB names become task directory names: lowercase letters, digits and underscores."""
    import re

    return re.fullmatch(r"[a-z][a-z0-9_]*", name) is not None


__all__ = ["FibDefinition", "FibFileError", "FibTensor", "read_definition", "reference_name_ok"]
