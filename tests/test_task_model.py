"""Task files load in one call, describe the bundled operators, and bad files name file and field."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from ksearch_agent.task import TaskFileError, load_task


def test_rmsnorm_definition_matches_the_spec() -> None:
    t = load_task("rmsnorm")
    d = t.definition
    assert d.axes["hidden_size"].value == 4096 and d.axes["batch_size"].type == "var"
    assert list(d.inputs) == ["hidden_states", "weight"]
    assert d.inputs["hidden_states"].dtype == "bfloat16" and d.outputs["output"].dtype == "bfloat16"
    assert [w.axes["batch_size"] for w in t.workloads] == [1, 7, 64, 300, 512, 4096]
    assert [w.axes["batch_size"] for w in t.select(cpu=True)] == [1, 7, 64, 300]


def test_cpu_subsets_reach_past_the_usual_block_sizes() -> None:
    """Rows from 256 on, where a grid capped at 256 programs stops writing, are checked on the CPU too."""
    for name in ("rmsnorm", "softmax"):
        assert max(w.axes["batch_size"] for w in load_task(name).select(cpu=True)) >= 300, name


def test_softmax_cpu_subset_has_inputs_that_overflow_without_the_max_subtraction() -> None:
    """exp overflows float32 above ~88.7; rows of 8192 values with std 100 reach several hundred."""
    t = load_task("softmax")
    stds = [t.resolve(w)["inputs"][0]["params"]["std"] for w in t.select(cpu=True)]
    assert max(stds) >= 50


def test_trimul_cpu_run_always_reaches_an_n_that_is_not_a_multiple_of_32() -> None:
    """The listed CPU shapes stay at N=32 (the interpreter's cost grows with N^3); N=48 comes from the unlisted
    shape drawn on every CPU run, the only multiple of 16 between the listed 32 and 64."""
    t = load_task("trimul")
    assert {w.axes["seqlen"] for w in t.select(cpu=True)} == {32}
    drawn = {
        w.axes["seqlen"] for seed in range(20) for w in t.unlisted_workloads(1, random.Random(seed), cpu=True)
    }
    assert drawn == {48}


def test_every_unlisted_trimul_shape_on_the_gpu_moves_each_axis_that_has_an_unlisted_value() -> None:
    """A kernel keyed on the listed values of any one axis (seqlen or dim; both listed batch sizes leave none
    between them) meets a value it has not seen in every unlisted workload, not only when the draw picks its axis."""
    t = load_task("trimul")
    listed = {a: {w.axes[a] for w in t.workloads} for a in ("bs", "seqlen", "dim")}
    drawn = [w.axes for seed in range(20) for w in t.unlisted_workloads(2, random.Random(seed))]
    assert all(a["seqlen"] not in listed["seqlen"] and a["dim"] not in listed["dim"] for a in drawn), drawn
    assert all(a["bs"] in listed["bs"] for a in drawn)


def test_trimul_has_the_gpumode_tests_and_benchmarks() -> None:
    t = load_task("trimul")
    tests = [w for w in t.workloads if w.roles == ["correctness"]]
    bench = t.select(role="benchmark")
    assert len(tests) == 18 and len(bench) == 7
    assert [(w.axes["seqlen"], w.axes["bs"], w.axes["dim"], w.seed) for w in bench][0] == (256, 2, 128, 9371)
    cauchy = [w for w in t.workloads if w.inputs["x"].kind == "cauchy"]
    assert len(cauchy) == 7 + 2  # 7 tests and 2 benchmarks draw x from the Cauchy distribution
    assert t.definition.tolerance.rtol == t.definition.tolerance.atol == 0.02


def test_resolve_gives_concrete_shapes_scales_and_roofline_counts() -> None:
    t = load_task("trimul")
    w = t.select(role="benchmark")[0]
    spec = t.resolve(w)
    shapes = {i["name"]: i["shape"] for i in spec["inputs"]}
    assert shapes["x"] == [2, 256, 256, 128] and shapes["to_out"] == [128, 128]
    std = {i["name"]: i["params"]["std"] for i in spec["inputs"]}
    assert std["left_proj"] == pytest.approx(1 / 128**0.5)
    assert spec["flops"] == pytest.approx(2 * 2 * 256**2 * 128 * 128 * 6 + 2 * 2 * 128 * 256**3)
    assert spec["bytes"] == 4 * 2 * 256**2 * (2 * 128 + 1)


def _copy_task(tmp_path: Path, name: str = "rmsnorm") -> Path:
    dst = tmp_path / name
    shutil.copytree(Path(load_task(name).directory), dst)
    return dst


def _edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_bad_dtype_names_file_and_field(tmp_path: Path) -> None:
    d = _copy_task(tmp_path)
    _edit(d / "definition.json", lambda j: j["inputs"]["weight"].update(dtype="bf17"))
    with pytest.raises(TaskFileError) as err:
        load_task(d)
    assert err.value.file.endswith("definition.json") and err.value.field == "inputs.weight.dtype"


def test_unknown_axis_in_a_shape_is_rejected(tmp_path: Path) -> None:
    d = _copy_task(tmp_path)
    _edit(d / "definition.json", lambda j: j["outputs"]["output"].update(shape=["batch_size", "hidden"]))
    with pytest.raises(TaskFileError, match="unknown axis 'hidden'"):
        load_task(d)


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    d = _copy_task(tmp_path)
    (d / "workloads.json").write_text('{"workloads": [ {"id": "b1", } ]}')
    with pytest.raises(TaskFileError) as err:
        load_task(d)
    assert err.value.file.endswith("workloads.json") and "line 1" in err.value.field


def test_workload_missing_a_var_axis_is_rejected(tmp_path: Path) -> None:
    d = _copy_task(tmp_path)
    _edit(d / "workloads.json", lambda j: j["workloads"][0].update(axes={}))
    with pytest.raises(TaskFileError) as err:
        load_task(d)
    assert err.value.field == "workloads.0.axes" and "batch_size" in str(err.value)


def test_missing_reference_file_is_named(tmp_path: Path) -> None:
    d = _copy_task(tmp_path)
    (d / "reference.py").unlink()
    with pytest.raises(TaskFileError, match="reference"):
        load_task(d)


def test_expression_with_code_is_refused(tmp_path: Path) -> None:
    d = _copy_task(tmp_path)
    _edit(d / "definition.json", lambda j: j.update(flops="__import__('os').system('true')"))
    with pytest.raises(TaskFileError) as err:
        load_task(d)
    assert err.value.field == "flops"


def test_unknown_task_lists_the_bundled_ones() -> None:
    with pytest.raises(TaskFileError, match="rmsnorm, softmax, trimul"):
        load_task("no_such_task")
