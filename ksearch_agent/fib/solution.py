"""FIB Solution JSON: a kernel's sources, language and entry point, in and out of our Candidate.

FIB calls ``file.py::func``, by default in destination-passing style (outputs preallocated and passed after
the inputs). Our engine calls ``run(*inputs)`` and takes the returned outputs, so a Solution whose entry is
not ``run`` or that writes into its outputs gets a small generated entry file that allocates the outputs
from the definition's shapes and calls it; the Solution's own files are kept unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ksearch_agent.candidate import Candidate, CandidateError
from ksearch_agent.fib.errors import FibFileError, from_validation, read_json

WRAPPER_FILE = "fib_entry.py"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class FibBuildSpec(_Model):
    language: Literal["python", "triton", "cpp", "cuda", "tilelang"]
    target_hardware: list[str] = Field(min_length=1)
    entry_point: str = Field(pattern=r"^[^:]+::[A-Za-z_][A-Za-z0-9_]*$", description="file.py::function")
    dependencies: list[str] = Field(default_factory=list)
    destination_passing_style: bool = True
    binding: str | None = None


class FibSource(_Model):
    path: str = Field(min_length=1)
    content: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        if v.startswith("/") or ".." in Path(v).parts:
            raise ValueError(f"source path {v!r} must be relative, without '..'")
        return v


class FibSolution(_Model):
    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    author: str = Field(min_length=1)
    spec: FibBuildSpec
    sources: list[FibSource] = Field(min_length=1)
    description: str | None = None


def read_solution(path: Path) -> FibSolution:
    data = read_json(path)
    try:
        solution = FibSolution.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, path) from None
    entry_file = solution.spec.entry_point.split("::")[0]
    if entry_file not in {s.path for s in solution.sources}:
        raise FibFileError(path, "spec.entry_point", f"entry file {entry_file!r} is not among the sources")
    return solution


def looks_like_solution(path: Path) -> bool:
    """Whether ``path`` is a JSON file shaped like a FIB Solution (``eval`` then reads it as one)."""
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "spec" in data and "sources" in data


def linear_rules(constraints: list[str]) -> list[tuple[str, str, int]]:
    """``(a, b, c)`` for each constraint ``a == b + c`` or ``a == b - c`` over axis names, so an output axis
    that no input shape carries (``batch_size`` from ``len_indptr == batch_size + 1``) can be derived."""
    rules = []
    for text in constraints:
        m = re.fullmatch(r"\s*(\w+)\s*==\s*(\w+)\s*([+-])\s*(\d+)\s*", text)
        if m:
            c = int(m.group(4))
            rules.append((m.group(1), m.group(2), c if m.group(3) == "+" else -c))
    return rules


def _wrapper(
    module: str,
    func: str,
    dps: bool,
    inputs: dict[str, list[str] | None],
    outputs: dict,
    consts: dict[str, int] | None = None,
    rules: list[tuple[str, str, int]] | None = None,
) -> str:
    """Entry file calling ``module.func`` as our engine expects (``run(*inputs)`` returning the outputs)."""
    if not dps:
        return f'"""Generated: calls {module}.{func}."""\nfrom {module} import {func} as run  # noqa: F401\n'
    return f'''"""Generated: allocates the outputs and calls {module}.{func} in destination-passing style."""
import torch

from {module} import {func} as _entry

_INPUTS = {inputs!r}
_OUTPUTS = {outputs!r}
_CONSTS = {consts or {}!r}
_RULES = {rules or []!r}


def run(*args):
    axes = dict(_CONSTS)
    for (name, shape), value in zip(_INPUTS.items(), args):
        if shape is not None:
            for i, axis in enumerate(shape):
                axes[axis] = value.shape[i]
    for a, b, c in _RULES:  # a == b + c
        if a in axes and b not in axes:
            axes[b] = axes[a] - c
        elif b in axes and a not in axes:
            axes[a] = axes[b] + c
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    outs = [
        torch.empty([axes[a] for a in spec["shape"]], dtype=getattr(torch, spec["dtype"]), device=device)
        for spec in _OUTPUTS.values()
    ]
    _entry(*args, *outs)
    return outs[0] if len(outs) == 1 else tuple(outs)
'''


def to_candidate(
    solution: FibSolution,
    inputs: dict[str, list[str] | None],
    outputs: dict[str, dict[str, object]],
    consts: dict[str, int] | None = None,
    constraints: list[str] | None = None,
) -> Candidate:
    """Our candidate for a FIB Solution. ``inputs``/``outputs`` are the definition's (names to axis-name
    shapes; outputs also carry dtypes), needed only for destination-passing style. Raises
    :class:`CandidateError` for a language or layout the engine cannot run."""
    spec = solution.spec
    if spec.language not in ("python", "triton"):
        raise CandidateError(
            f"solution {solution.name!r} is {spec.language}: only python and triton FIB solutions can be "
            "evaluated (CUDA ones need FIB's own build; port the kernel to our CUDA entry file)"
        )
    files: dict[str, str] = {}
    for src in solution.sources:
        name = Path(src.path).name
        if name in files:
            raise CandidateError(f"solution {solution.name!r}: two sources are named {name!r}")
        files[name] = src.content
    entry_file, func = spec.entry_point.split("::")
    entry_name = Path(entry_file).name
    if not entry_name.endswith(".py"):
        raise CandidateError(f"solution {solution.name!r}: entry file {entry_file!r} is not a .py file")
    if func == "run" and not spec.destination_passing_style:
        entry = entry_name
    else:
        if WRAPPER_FILE in files:
            raise CandidateError(f"solution {solution.name!r}: a source may not be named {WRAPPER_FILE!r}")
        module = entry_name.removesuffix(".py")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module):
            raise CandidateError(f"solution {solution.name!r}: entry file {entry_name!r} is not importable")
        files[WRAPPER_FILE] = _wrapper(
            module,
            func,
            spec.destination_passing_style,
            inputs,
            outputs,
            consts,
            linear_rules(constraints or []),
        )
        entry = WRAPPER_FILE
    return Candidate(
        language="triton" if spec.language == "triton" else "python",
        files=files,
        entry=entry,
        api="run",
        label=f"FIB solution {solution.name}",
    )


def from_candidate(
    candidate: Candidate,
    definition: str,
    *,
    name: str,
    author: str = "ksearch-agent",
    target_hardware: str = "H200",
    description: str | None = None,
) -> FibSolution:
    """A FIB Solution holding the candidate's files, called as ``entry::run`` returning its outputs."""
    if candidate.api != "run":
        raise CandidateError("only run(...) candidates can be written as FIB solutions (not custom_kernel)")
    if candidate.language == "cuda":
        raise CandidateError(
            "CUDA candidates use ksearch's own loader; FIB cannot build them as a solution (export a "
            "Triton or Python candidate)"
        )
    return FibSolution(
        name=name,
        definition=definition,
        author=author,
        spec=FibBuildSpec(
            language=candidate.language,
            target_hardware=[target_hardware],
            entry_point=f"{candidate.entry}::run",
            dependencies=["torch", "triton"] if candidate.language == "triton" else ["torch"],
            destination_passing_style=False,
        ),
        sources=[FibSource(path=n, content=t) for n, t in sorted(candidate.files.items())],
        description=description,
    )
