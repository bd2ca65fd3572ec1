"""``ksearch tasks import``: a FIB Definition (and its workloads) as a task directory the engine runs.

What FIB leaves implicit is made explicit here, by rule:
- a scalar input (``shape: null``) stays a plain number, taken per workload from its ``scalar`` entry;
- an int input named ``*indptr`` is an offsets array whose last value is the axis a constraint
  ``AXIS == NAME[-1].item()`` names; in a ``causal`` definition a second indptr is at least as long per
  sequence as the first (queries attend to a prefix of their keys);
- an int input named ``*indices`` holds distinct page ids below the ``num_pages`` axis;
- a ``safetensors`` input is copied from ``--blobs`` when the file is there, and synthesised by the rules
  above (with a warning) when it is not;
- tolerance is FIB's default (rtol = atol = 1e-2); bytes are the outputs' (a floor no kernel can beat,
  since page caches are read only in part), flops 0: bundled tasks carry exact formulas instead.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ksearch_agent.fib.definition import FibDefinition, read_definition, reference_name_ok
from ksearch_agent.fib.errors import FibFileError
from ksearch_agent.fib.workload import FibWorkloadRow, read_workloads
from ksearch_agent.task import Task, load_task

DTYPE_BYTES = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "float8_e4m3fn": 1,
    "int64": 8,
    "int32": 4,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
}
SUPPORTED_DTYPES = set(DTYPE_BYTES)
CPU_SUBSET_BYTES = 64 << 20
"""An imported workload is marked for the CPU interpreter when its inputs and outputs fit in this."""


@dataclass
class ImportResult:
    task: Task
    warnings: list[str] = field(default_factory=list)


def _indptr_totals(definition: FibDefinition) -> dict[str, str]:
    totals: dict[str, str] = {}
    for c in definition.constraints:
        m = re.fullmatch(r"\s*(\w+)\s*==\s*(\w+)\s*\[\s*-1\s*\]\s*\.item\(\)\s*", c)
        if m and m.group(1) in definition.axes:
            totals[m.group(2)] = m.group(1)
    return totals


def _input_init(definition: FibDefinition, name: str, path: Path) -> dict[str, Any]:
    """How to synthesise input ``name`` when no blob gives it."""
    spec = definition.inputs[name]
    if spec.shape is None:
        return {"kind": "scalar", "value": 0.0}
    if spec.dtype.startswith(("int", "uint")):
        if name.endswith("indptr"):
            total = _indptr_totals(definition).get(name)
            if total is None:
                raise FibFileError(
                    path,
                    f"inputs.{name}",
                    f"cannot synthesise {name!r}: no constraint 'AXIS == {name}[-1].item()' gives its total",
                )
            init: dict[str, Any] = {"kind": "indptr", "total": total}
            earlier = [n for n in definition.inputs if n.endswith("indptr") and n != name]
            first = earlier[0] if earlier else None
            if (
                first
                and "causal" in definition.name
                and list(definition.inputs).index(first) < list(definition.inputs).index(name)
            ):
                init["at_least"] = first
            return init
        if name.endswith("indices"):
            if "num_pages" not in definition.axes:
                raise FibFileError(
                    path,
                    f"inputs.{name}",
                    f"cannot synthesise {name!r}: the definition has no num_pages axis",
                )
            return {"kind": "page_ids", "high": "num_pages"}
        return {"kind": "int_range", "low": 0, "high": 1}
    if spec.dtype == "bool":
        return {"kind": "mask01"}
    return {"kind": "normal"}


# FlashInfer-Bench times kernels on the GPU, so an imported task hides host launch work up to this long
# (see ksearch_agent/worker/timing.py); FlashInfer's Python wrappers take ~0.1 ms per call.
FIB_LAUNCH_OVERLAP_US = 200.0


def convert_definition(definition: FibDefinition, path: Path, opponent: str | None) -> dict[str, Any]:
    """Our definition.json for a FIB definition (see the module docstring for the rules)."""
    if not reference_name_ok(definition.name):
        raise FibFileError(path, "name", f"{definition.name!r} must be lowercase letters, digits and '_'")
    axes: dict[str, Any] = {}
    for n, a in definition.axes.items():
        axes[n] = {"type": a.type, **({"value": a.value} if a.type == "const" else {})}
        if a.description:
            axes[n]["description"] = a.description
    inputs: dict[str, Any] = {}
    for n, s in definition.inputs.items():
        if s.dtype not in SUPPORTED_DTYPES:
            raise FibFileError(path, f"inputs.{n}.dtype", f"{s.dtype} is not supported by the engine")
        inputs[n] = {"shape": s.shape, "dtype": s.dtype, "init": _input_init(definition, n, path)}
        if s.description:
            inputs[n]["description"] = s.description
    outputs: dict[str, Any] = {}
    out_bytes: list[str] = []
    for n, s in definition.outputs.items():
        if s.shape is None:
            raise FibFileError(path, f"outputs.{n}.shape", "scalar outputs are not supported")
        if s.dtype not in SUPPORTED_DTYPES:
            raise FibFileError(path, f"outputs.{n}.dtype", f"{s.dtype} is not supported by the engine")
        outputs[n] = {"shape": s.shape, "dtype": s.dtype}
        out_bytes.append(" * ".join([str(DTYPE_BYTES[s.dtype]), *s.shape]))
    constrained = bool(definition.constraints) or any(
        i["init"]["kind"] in ("indptr", "page_ids") for i in inputs.values()
    )
    return {
        "name": definition.name,
        "op_type": definition.op_type,
        "description": (definition.description or definition.name)
        + " (imported from a FlashInfer-Bench definition)",
        "axes": axes,
        "inputs": inputs,
        "outputs": outputs,
        "reference": "reference.py",
        "constraints": definition.constraints,
        "tolerance": {"rtol": 0.01, "atol": 0.01, "required_matched_ratio": 1.0},
        "flops": 0,
        "bytes": " + ".join(out_bytes) or 0,
        "compute_unit": "memory",
        "opponent": opponent,
        "unlisted_shapes": not constrained,
        "reference_timing": "cached",  # FIB references are Python loops whose time varies more than a kernel's
        "launch_overlap_us": FIB_LAUNCH_OVERLAP_US,
    }


def convert_workloads(
    definition: FibDefinition,
    ours: dict[str, Any],
    rows: list[FibWorkloadRow],
    path: Path,
    blobs: Path | None,
    into: Path,
    warnings: list[str],
) -> list[dict[str, Any]]:
    """Our workload entries for FIB rows, copying blobs found under ``blobs`` into ``into/blob``."""
    var_axes = [n for n, a in definition.axes.items() if a.type == "var"]
    out: list[dict[str, Any]] = []
    missing_blobs: dict[str, int] = {}
    for lineno, row in enumerate(rows, start=1):
        w = row.workload
        if row.definition != definition.name:
            raise FibFileError(path, "definition", f"{row.definition!r} is not {definition.name!r}", lineno)
        absent = [a for a in var_axes if a not in w.axes]
        if absent:
            raise FibFileError(path, "workload.axes", f"missing values for var axes {absent}", lineno)
        extra = [a for a in w.axes if a not in var_axes]
        if extra:
            raise FibFileError(path, "workload.axes", f"{extra} are not var axes of the definition", lineno)
        inputs: dict[str, Any] = {}
        for name, spec in definition.inputs.items():
            given = w.inputs.get(name)
            if given is None:
                raise FibFileError(path, f"workload.inputs.{name}", "missing", lineno)
            if spec.shape is None:
                if given.type != "scalar":
                    raise FibFileError(
                        path, f"workload.inputs.{name}", "a scalar input needs {type: scalar}", lineno
                    )
                inputs[name] = {"kind": "scalar", "value": float(given.value)}  # type: ignore[union-attr]
            elif given.type == "scalar":
                raise FibFileError(
                    path, f"workload.inputs.{name}", "a tensor input cannot be a scalar", lineno
                )
            elif given.type == "safetensors":
                src = (blobs / given.path) if blobs is not None else None  # type: ignore[union-attr]
                if src is not None and src.is_file():
                    rel = Path("blob") / Path(given.path).name  # type: ignore[union-attr]
                    (into / "blob").mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, into / rel)
                    inputs[name] = {"kind": "blob", "path": str(rel), "key": given.tensor_key}  # type: ignore[union-attr]
                else:
                    missing_blobs[name] = missing_blobs.get(name, 0) + 1
        for name in ours["inputs"]:
            if ours["inputs"][name]["init"]["kind"] == "page_ids" and name not in inputs:
                pages, used = w.axes.get("num_pages"), None
                dims = ours["inputs"][name]["shape"]
                used = w.axes.get(dims[0]) if dims else None
                if pages is not None and used is not None and used > pages:
                    raise FibFileError(
                        path, "workload.axes", f"{used} distinct pages cannot come from {pages}", lineno
                    )
        out.append({"id": w.uuid, "axes": dict(w.axes), "inputs": inputs})
    for name, count in missing_blobs.items():
        warnings.append(
            f"{count} workload(s) name a safetensors blob for {name!r} that is not "
            + (f"under {blobs}" if blobs else "available (no --blobs)")
            + f": synthesised as {ours['inputs'][name]['init']['kind']} instead"
        )
    return out


def _bytes_of(ours: dict[str, Any], axes: dict[str, int]) -> int:
    consts = {n: a["value"] for n, a in ours["axes"].items() if a["type"] == "const"}
    values = {**consts, **axes}
    total = 0
    for spec in [*ours["inputs"].values(), *ours["outputs"].values()]:
        n = DTYPE_BYTES.get(spec["dtype"], 4)
        for d in spec["shape"] or []:
            n *= values[d]
        total += n
    return total


def import_definition(
    definition_path: Path,
    workloads_path: Path | None = None,
    *,
    blobs: Path | None = None,
    into: Path | None = None,
) -> ImportResult:
    """Write a task directory for a FIB definition and return the loaded task and any warnings."""
    from ksearch_agent.opponents import opponent_for

    definition = read_definition(definition_path)
    rows = read_workloads(workloads_path) if workloads_path is not None else []
    target = into if into is not None else Path(definition.name)
    if target.exists() and any(target.iterdir()):
        raise FibFileError(target, "<into>", "the target directory exists and is not empty")
    ours = convert_definition(definition, definition_path, opponent_for(definition.name))
    warnings: list[str] = []
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        entries = convert_workloads(
            definition, ours, rows, workloads_path or definition_path, blobs, target, warnings
        )
        if not entries:  # no workloads file: one small workload so the task is runnable
            raise FibFileError(definition_path, "workloads", "give --workloads FILE.jsonl (no workloads)")
        scalars = [n for n, s in definition.inputs.items() if s.shape is None]
        for n in scalars:  # the definition's default: the first workload's value
            ours["inputs"][n]["init"]["value"] = entries[0]["inputs"][n]["value"]
        small = min(entries, key=lambda e: _bytes_of(ours, e["axes"]))
        if _bytes_of(ours, small["axes"]) <= CPU_SUBSET_BYTES:
            small["cpu"] = True
        else:
            warnings.append("no workload is small enough for the CPU interpreter: the CPU subset is empty")
        (target / "definition.json").write_text(json.dumps(ours, indent=1) + "\n")
        (target / "fib_definition.json").write_text(definition.model_dump_json(indent=1) + "\n")
        (target / "reference.py").write_text(
            f'"""Reference of {definition.name}, as given in its FlashInfer-Bench definition."""\n\n'
            + definition.reference.rstrip()
            + "\n"
        )
        (target / "workloads.json").write_text(json.dumps({"workloads": entries}, indent=1) + "\n")
        (target / "seeds").mkdir(exist_ok=True)
        if workloads_path is not None:
            shutil.copyfile(workloads_path, target / "fib_workloads.jsonl")
        task = load_task(target)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return ImportResult(task=task, warnings=warnings)
