"""Task model: a FlashInfer-Bench-style Definition plus the workloads and tolerances the engine needs.

A task lives in ``tasks/<name>/`` as ``definition.json``, ``reference.py``, ``workloads.json`` and
``seeds/``. :func:`load_task` reads and validates all of it in one call; a malformed file raises
:class:`TaskFileError` naming the file and the field. What the GPU worker needs is handed over as
plain JSON (:meth:`Task.resolve`), so the worker never imports pydantic.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ksearch_agent.expr import ExpressionError, evaluate, names_in

DType = Literal[
    "float32", "float16", "bfloat16", "float64", "int32", "int64", "int8", "uint8", "bool", "float8_e4m3fn"
]
InitKind = Literal[
    "normal",
    "uniform",
    "cauchy",
    "int_range",
    "ones",
    "mask01",
    "scalar",
    "index",
    "indptr",
    "page_ids",
    "blob",
]
Role = Literal["correctness", "benchmark", "holdout"]
"""``holdout`` workloads are run only when named (``--workloads``): kept out of the search's feedback."""
ComputeUnit = Literal["bf16_tensor_core", "fp32", "memory"]


def _bundled_tasks_dir() -> Path:
    """``tasks/`` ships inside the package as ``ksearch_agent.tasks``; a plain checkout has it beside."""
    spec = importlib.util.find_spec("ksearch_agent.tasks")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "tasks"


BUNDLED_TASKS_DIR = _bundled_tasks_dir()


class TaskFileError(ValueError):
    """A task file is missing or malformed; the message names the file and the field."""

    def __init__(self, file: Path | str, field: str, message: str) -> None:
        self.file, self.field = str(file), field
        super().__init__(f"{file}: field '{field}': {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Axis(_Strict):
    type: Literal["const", "var"]
    value: int | None = None
    description: str = ""
    multiple_of: int = Field(
        default=1, ge=1, description="unlisted test values are drawn as multiples of this"
    )

    @model_validator(mode="after")
    def _const_has_value(self) -> Axis:
        if self.type == "const" and self.value is None:
            raise ValueError("a const axis needs an integer 'value'")
        if self.type == "var" and self.value is not None:
            raise ValueError("a var axis takes its value from each workload, not 'value'")
        return self


class InputInit(_Strict):
    """How one input is generated. Numbers may be expressions over axis names.

    Index kinds make inputs bound by constraints: ``indptr`` is a non-decreasing offsets array from 0 to
    ``total`` (each segment non-empty when ``total`` allows; with ``at_least`` naming an earlier indptr
    input, each segment at least as long as that one's, as causal prefill needs); ``page_ids`` are
    distinct ids drawn from ``[0, high)``; ``blob`` loads ``key`` from the safetensors file ``path``
    (relative to the task directory). ``scalar`` is a plain number for a scalar input (``shape: null``).
    """

    kind: InitKind = "normal"
    mean: float | str = 0.0
    std: float | str = 1.0
    scale: float | str = 1.0
    low: float | str = 0.0
    high: float | str = 1.0
    value: float | str = 0.0
    total: float | str = 0.0
    at_least: str = ""
    path: str = ""
    key: str = ""


class TensorSpec(_Strict):
    shape: list[str | int] | None = Field(description="axis names or sizes; null for a scalar input")
    dtype: DType
    description: str = ""
    init: InputInit = Field(default_factory=InputInit)


class Tolerance(_Strict):
    """An element fails only when both its absolute and its relative error exceed the bounds."""

    rtol: float = Field(ge=0)
    atol: float = Field(ge=0)
    required_matched_ratio: float = Field(default=1.0, gt=0, le=1)


class GpuModeAdapter(_Strict):
    """Maps the definition's inputs onto a GPUMode ``custom_kernel(data)`` tuple."""

    positional: list[str]
    weights: dict[str, str]
    config: dict[str, str]


class Definition(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    op_type: str
    description: str
    axes: dict[str, Axis]
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    reference: str = "reference.py"
    constraints: list[str] = Field(default_factory=list)
    tolerance: Tolerance
    flops: str | float
    bytes: str | float
    compute_unit: ComputeUnit = "fp32"
    gpumode: GpuModeAdapter | None = None
    opponent: str | None = Field(
        default=None, description="library opponent timed beside the candidate (ksearch_agent.opponents)"
    )
    unlisted_shapes: bool = Field(
        default=True,
        description="draw extra workloads off the list; off where var axes are bound to each other",
    )
    reference_timing: Literal["interleaved", "cached"] = Field(
        default="interleaved",
        description="interleaved: the reference is timed beside every evaluation, call by call, so drift cannot "
        "tilt a speedup; cached: once per judge and workload, so every candidate of a search is divided by the "
        "same reference time (for host-bound references whose time varies more between evaluations than the "
        "kernels' do)",
    )
    launch_overlap_us: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="flushed timing: GPU work (a spin) queued before each timed call, so up to this much of "
        "the call's host-side launch work is hidden, as in FlashInfer's and Triton's benchmarks; 0 times "
        "every call from an idle GPU, its host work counted",
    )
    launch_gate_us: float = Field(
        default=0.0,
        ge=0,
        le=100_000,
        description="flushed timing: instead of the spin, GPU work that fills every SM and holds until the call "
        "has returned (at most this long), so none of the call's host-side launch work is counted and nothing "
        "on another stream runs ahead of the start event; 0 (the default) uses the spin",
    )

    @property
    def scalar_inputs(self) -> list[str]:
        return [n for n, s in self.inputs.items() if s.shape is None]

    @property
    def tensor_inputs(self) -> dict[str, TensorSpec]:
        return {n: s for n, s in self.inputs.items() if s.shape is not None}

    @model_validator(mode="after")
    def _names_resolve(self) -> Definition:
        axes = set(self.axes)
        for kind, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            for tname, spec in specs.items():
                if spec.shape is None:
                    if kind == "outputs":
                        raise ValueError(f"outputs.{tname}.shape: outputs must be tensors, not scalars")
                    if tname in axes:
                        raise ValueError(f"inputs.{tname}: a scalar input may not share an axis's name")
                    continue
                for dim in spec.shape:
                    if isinstance(dim, str) and dim not in axes:
                        raise ValueError(f"{kind}.{tname}.shape: unknown axis {dim!r}")
        names = list(self.inputs)
        for tname, spec in self.inputs.items():
            other = spec.init.at_least
            if other and (other not in names or names.index(other) >= names.index(tname)):
                raise ValueError(f"inputs.{tname}.init.at_least: {other!r} is not an earlier input")
        for fname in ("flops", "bytes"):
            expr = getattr(self, fname)
            if isinstance(expr, str):
                try:
                    unknown = names_in(expr) - axes
                    if not unknown:
                        evaluate(expr, dict.fromkeys(axes, 2))  # structure check with stand-in values
                except ExpressionError as exc:
                    raise ValueError(f"{fname}: {exc}") from None
                if unknown:
                    raise ValueError(f"{fname}: unknown axes {sorted(unknown)}")
        if self.gpumode is not None:
            if self.scalar_inputs:
                raise ValueError("gpumode: the adapter does not support scalar inputs")
            used = [*self.gpumode.positional, *self.gpumode.weights.values()]
            missing = [n for n in used if n not in self.inputs]
            if missing:
                raise ValueError(f"gpumode: the adapter names unknown inputs {missing}")
        return self


class Workload(_Strict):
    id: str
    axes: dict[str, int]
    seed: int | None = None
    inputs: dict[str, InputInit] = Field(default_factory=dict)
    roles: list[Role] = Field(default_factory=lambda: list[Role](["correctness", "benchmark"]))
    cpu: bool = False


class WorkloadFile(_Strict):
    workloads: list[Workload]


class Task(BaseModel):
    """A loaded task: its definition, its workloads and where its files are."""

    definition: Definition
    workloads: list[Workload]
    directory: Path

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def reference_path(self) -> Path:
        return self.directory / self.definition.reference

    @property
    def seeds(self) -> list[Path]:
        return sorted((self.directory / "seeds").glob("*.py"))

    def select(
        self, ids: list[str] | None = None, *, cpu: bool = False, role: Role | None = None
    ) -> list[Workload]:
        """Workloads by id (all when ``ids`` is empty), restricted to the CPU subset or a role."""
        chosen = self.workloads
        if ids:
            known = {w.id: w for w in self.workloads}
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise KeyError(f"task {self.name!r} has no workloads {unknown}; known: {sorted(known)}")
            chosen = [known[i] for i in ids]
        elif cpu:
            chosen = [w for w in chosen if w.cpu]
        if role is not None:
            chosen = [w for w in chosen if role in w.roles]
        return chosen

    def unlisted_workloads(self, count: int, rng: random.Random, *, cpu: bool = False) -> list[Workload]:
        """Workloads that are not in the list: a listed workload with every var axis that can be moved off
        the listed values moved to a value drawn from the range the listed values span (on the CPU, up to
        twice the CPU subset's largest value, but not past it when it is already 128 or more: the
        interpreter's cost grows with the rows). A kernel that hard-codes the listed values of any one axis
        fails on each of these (moving one axis per workload let one that keyed on another axis through
        whenever the draws missed it: a quarter of TriMul's GPU runs); staying within the span keeps the
        cost near the listed workloads'."""
        if not self.definition.unlisted_shapes:
            return []
        pool = (self.select(cpu=True) or self.workloads) if cpu else self.select(role="correctness")
        var_axes = [n for n, a in self.definition.axes.items() if a.type == "var"]
        out: list[Workload] = []
        for k in range(count):
            template = rng.choice(pool)
            axes = dict(template.axes)
            for name in var_axes:
                span = sorted({w.axes[name] for w in pool})
                listed = {
                    w.axes[name] for w in self.workloads
                }  # avoid every listed value, not just the pool's
                step = self.definition.axes[name].multiple_of
                lo, hi = span[0], (min(span[-1] * 2, max(span[-1], 128)) if cpu else span[-1])
                first = max(step, -(-lo // step) * step)
                choices = [v for v in range(first, hi + 1, step) if v not in listed]
                if choices:
                    axes[name] = rng.choice(choices)
            label = ",".join(f"{a}={v}" for a, v in axes.items())
            out.append(
                Workload(
                    id=f"unlisted{k}[{label}]",
                    axes=axes,
                    inputs=template.inputs,
                    roles=["correctness"],
                    cpu=cpu,
                )
            )
        return out

    def axis_values(self, workload: Workload) -> dict[str, int]:
        values = {name: ax.value for name, ax in self.definition.axes.items() if ax.type == "const"}
        values.update(workload.axes)
        return {k: int(v) for k, v in values.items() if v is not None}

    def flops(self, workload: Workload) -> float:
        return float(evaluate(self.definition.flops, self.axis_values(workload)))

    def bytes(self, workload: Workload) -> float:
        return float(evaluate(self.definition.bytes, self.axis_values(workload)))

    def resolve(self, workload: Workload) -> dict[str, Any]:
        """Plain-JSON description of one workload: concrete shapes, dtypes and generators."""
        axes = self.axis_values(workload)

        def tensor(name: str, spec: TensorSpec, init: InputInit | None) -> dict[str, Any]:
            shape = [axes[d] if isinstance(d, str) else int(d) for d in spec.shape or []]
            params: dict[str, Any] = {}
            if init is not None:
                for key in ("mean", "std", "scale", "low", "high", "value", "total"):
                    params[key] = float(evaluate(getattr(init, key), axes))
                if init.at_least:
                    params["at_least"] = init.at_least
                if init.kind == "blob":
                    params["path"] = str((self.directory / init.path).resolve())
                    params["key"] = init.key or name
            return {
                "name": name,
                "shape": shape,
                "dtype": spec.dtype,
                "kind": init.kind if init else None,
                "params": params,
            }

        scalars: dict[str, int | float] = {}
        for n in self.definition.scalar_inputs:
            spec = self.definition.inputs[n]
            value = evaluate(workload.inputs.get(n, spec.init).value, axes)
            scalars[n] = int(value) if spec.dtype.startswith(("int", "uint")) else float(value)
        inputs = [
            tensor(n, s, workload.inputs.get(n, s.init)) for n, s in self.definition.tensor_inputs.items()
        ]
        outputs = [tensor(n, s, None) for n, s in self.definition.outputs.items()]
        return {
            "id": workload.id,
            # Scalar inputs travel with the axes: the worker binds both into the entry point per workload.
            "axes": {**axes, **scalars},
            "scalars": scalars,
            "inputs": inputs,
            "outputs": outputs,
            "listed_seed": workload.seed,
            "flops": self.flops(workload),
            "bytes": self.bytes(workload),
        }

    def worker_spec(self) -> dict[str, Any]:
        """What the worker needs to know about the task besides workloads (plain JSON)."""
        d = self.definition
        return {
            "name": d.name,
            "reference": str(self.reference_path),
            "input_names": list(d.tensor_inputs),
            "call_order": list(d.inputs),
            "scalar_inputs": d.scalar_inputs,
            "opponent": d.opponent,
            "output_names": list(d.outputs),
            "tolerance": d.tolerance.model_dump(),
            "compute_unit": d.compute_unit,
            "gpumode": d.gpumode.model_dump() if d.gpumode else None,
            "launch_overlap_us": d.launch_overlap_us,
            "launch_gate_us": d.launch_gate_us,
        }


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise TaskFileError(path, "<file>", "file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TaskFileError(
            path, f"<line {exc.lineno} col {exc.colno}>", f"invalid JSON: {exc.msg}"
        ) from None


def _validated(model: type[BaseModel], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field, msg = ".".join(str(p) for p in err["loc"]), str(err["msg"]).removeprefix("Value error, ")
        if not field:  # model-level checks put the field path before the first ': '
            field, _, msg = msg.partition(": ") if ": " in msg else ("<root>", "", msg)
        raise TaskFileError(path, field, msg) from None


def _check_workloads(definition: Definition, workloads: list[Workload], path: Path) -> None:
    var_axes = {n for n, a in definition.axes.items() if a.type == "var"}
    seen: set[str] = set()
    for i, w in enumerate(workloads):
        where = f"workloads.{i}"
        if w.id in seen:
            raise TaskFileError(path, f"{where}.id", f"duplicate workload id {w.id!r}")
        seen.add(w.id)
        missing, extra = var_axes - set(w.axes), set(w.axes) - var_axes
        if missing:
            raise TaskFileError(path, f"{where}.axes", f"missing values for var axes {sorted(missing)}")
        if extra:
            raise TaskFileError(
                path, f"{where}.axes", f"{sorted(extra)} are not var axes of {definition.name!r}"
            )
        for axis, value in w.axes.items():
            if value <= 0:
                raise TaskFileError(path, f"{where}.axes.{axis}", f"must be positive, got {value}")
        for name in w.inputs:
            if name not in definition.inputs:
                raise TaskFileError(path, f"{where}.inputs.{name}", "not an input of the definition")
    if not workloads:
        raise TaskFileError(path, "workloads", "a task needs at least one workload")


def load_task(name_or_path: str | Path) -> Task:
    """Load a bundled task by name, or a task directory by path, validating every file."""
    path = Path(name_or_path)
    directory = path.resolve() if path.is_dir() else BUNDLED_TASKS_DIR / str(name_or_path)
    if not directory.is_dir():
        known = ", ".join(list_task_names()) or "none"
        raise TaskFileError(directory, "<task>", f"no such task (bundled tasks: {known})")
    def_path = directory / "definition.json"
    definition: Definition = _validated(Definition, _read_json(def_path), def_path)
    ref = directory / definition.reference
    if not ref.is_file():
        raise TaskFileError(def_path, "reference", f"reference file {ref.name!r} not found in {directory}")
    if "def run(" not in ref.read_text():
        raise TaskFileError(ref, "run", "the reference must define run(...)")
    wl_path = directory / "workloads.json"
    wfile: WorkloadFile = _validated(WorkloadFile, _read_json(wl_path), wl_path)
    _check_workloads(definition, wfile.workloads, wl_path)
    task = Task(definition=definition, workloads=wfile.workloads, directory=directory)
    for w in task.workloads:
        try:
            task.resolve(w)
        except ExpressionError as exc:
            raise TaskFileError(wl_path, f"workloads.{w.id}", str(exc)) from None
        if not all(math.isfinite(v) for v in (task.flops(w), task.bytes(w))):
            raise TaskFileError(def_path, "flops", f"not finite for workload {w.id}")
    return task


def list_task_names() -> list[str]:
    if not BUNDLED_TASKS_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_TASKS_DIR.iterdir() if (p / "definition.json").is_file())
