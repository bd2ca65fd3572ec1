"""FIB files in: ``ksearch tasks import`` makes a task directory the engine runs, and malformed FIB files end
with exit code 2 and an error naming the file, the line (JSONL) and the field. The definition and workloads
are small ones written by the tests (tests/fib_toy.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fib_toy import NAME, REFERENCE, write_files

from ksearch_agent.fib.errors import FibFileError
from ksearch_agent.fib.importer import import_definition
from ksearch_agent.worker.inputs import make_inputs

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(cwd / "cache"), "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_import_writes_a_task_with_per_workload_scalars_and_a_cpu_subset(tmp_path: Path) -> None:
    definition, workloads, dataset = write_files(tmp_path)
    result = import_definition(definition, workloads, blobs=dataset, into=tmp_path / "task")
    task = result.task
    assert task.name == NAME and [w.id for w in task.workloads] == ["uuid-blob", "uuid-synth"]
    assert task.definition.scalar_inputs == ["scale"]
    resolved = {w.id: task.resolve(w) for w in task.workloads}
    assert resolved["uuid-blob"]["scalars"] == {"scale": 0.5}
    assert resolved["uuid-synth"]["scalars"] == {"scale": 0.25}
    assert [i["name"] for i in resolved["uuid-blob"]["inputs"]] == ["x", "kv_indptr", "kv_indices"]
    assert task.select(cpu=True), "the smallest workload is marked for the CPU interpreter"
    assert task.definition.reference_timing == "cached", "a Python-loop reference is timed once per judge"
    assert (task.directory / "reference.py").read_text().strip().endswith(REFERENCE.strip().splitlines()[-1])


def test_present_blobs_are_loaded_and_missing_ones_synthesised_with_a_warning(tmp_path: Path) -> None:
    definition, workloads, dataset = write_files(tmp_path)
    result = import_definition(definition, workloads, blobs=dataset, into=tmp_path / "task")
    assert any("'kv_indptr'" in w and "synthesised as indptr" in w for w in result.warnings), result.warnings
    task = result.task
    blob = task.resolve(task.workloads[0])
    names = ["x", "kv_indptr", "kv_indices"]
    made = dict(zip(names, make_inputs(blob["inputs"], 7, torch.device("cpu")), strict=True))
    assert made["kv_indptr"].tolist() == [0, 2, 5]
    assert made["kv_indices"].tolist() == [6, 1, 0, 3, 4]


def test_synthesised_page_tables_are_valid_for_every_seed(tmp_path: Path) -> None:
    definition, workloads, _ = write_files(tmp_path, with_blob=False)
    task = import_definition(definition, workloads, into=tmp_path / "task").task
    spec = task.resolve(task.workloads[1])  # batch 3, 30 of 40 pages
    for seed in range(20):
        _, indptr, indices = make_inputs(spec["inputs"], seed, torch.device("cpu"))
        lengths = (indptr[1:] - indptr[:-1]).tolist()
        assert indptr[0] == 0 and indptr[-1] == 30 and all(n >= 1 for n in lengths)
        assert indices.numel() == 30 and len(set(indices.tolist())) == 30
        assert 0 <= int(indices.min()) and int(indices.max()) < 40


def test_causal_second_indptr_is_never_shorter_than_the_first() -> None:
    from ksearch_agent.task import load_task

    task = load_task(ROOT / "tasks" / "mla_paged_prefill_causal_h16_ckv512_kpe64_ps1")
    wl = next(w for w in task.workloads if w.id == "473e30ea-b329-4ef7-9961-7de140fd35da")
    specs = [s for s in task.resolve(wl)["inputs"] if s["name"] in ("qo_indptr", "kv_indptr", "kv_indices")]
    for seed in range(20):
        qo, kv, _ = make_inputs(specs, seed, torch.device("cpu"))
        assert qo[-1] == 52 and kv[-1] == 67
        assert ((kv[1:] - kv[:-1]) >= (qo[1:] - qo[:-1])).all()


def test_imported_task_evaluates_a_python_candidate_on_the_cpu(tmp_path: Path) -> None:
    definition, workloads, dataset = write_files(tmp_path)
    out = _cli(
        "tasks",
        "import",
        definition,
        "--workloads",
        workloads,
        "--blobs",
        dataset,
        "--into",
        "task",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert f"task {NAME} written" in out.stdout
    cand = tmp_path / "cand.py"
    cand.write_text(REFERENCE)
    out = _cli("eval", "task", cand, "--cpu", "--json", cwd=tmp_path)
    doc = json.loads(out.stdout)
    assert out.returncode == 0 and doc["status"] == "PASSED", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("edit", "phrases"),
    [
        (lambda d: d.pop("reference"), ["definition.json", "reference", "Field required"]),
        (lambda d: d["inputs"]["x"].update(dtype="complex64"), ["definition.json", "inputs.x.dtype"]),
        (lambda d: d["outputs"]["out"].update(shape=["batch_size", "nope"]), ["outputs.out.shape", "nope"]),
        (lambda d: d["axes"]["dim"].pop("value"), ["axes.dim"]),
    ],
)
def test_malformed_definition_exits_2_naming_file_and_field(tmp_path: Path, edit, phrases: list[str]) -> None:
    definition, workloads, _ = write_files(tmp_path, with_blob=False)
    data = json.loads(definition.read_text())
    edit(data)
    definition.write_text(json.dumps(data))
    out = _cli("tasks", "import", definition, "--workloads", workloads, "--into", "task", cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    for phrase in phrases:
        assert phrase in out.stderr, out.stderr
    assert not (tmp_path / "task").exists(), "nothing is left behind"


@pytest.mark.parametrize(
    ("line2", "phrases"),
    [
        (
            '{"definition": "toy_paged_sum_d4", "workload": {"uuid": "u", "axes": {}, "inputs": {"x": {"type": "cosmic"}}}}',
            ["workloads.jsonl:2", "workload.inputs.x"],
        ),
        (
            '{"definition": "toy_paged_sum_d4", "workload": {"axes": {}, "inputs": {}}}',
            ["workloads.jsonl:2", "workload.uuid"],
        ),
        ('{"definition": "toy_paged_sum_d4", "workload": ', ["workloads.jsonl:2", "invalid JSON"]),
        (
            '{"definition": "other_op", "workload": {"uuid": "u", "axes": {}, "inputs": {}}}',
            ["workloads.jsonl:2", "definition"],
        ),
    ],
)
def test_malformed_workload_line_exits_2_naming_the_line_and_field(
    tmp_path: Path, line2: str, phrases: list[str]
) -> None:
    definition, workloads, _ = write_files(tmp_path, with_blob=False)
    first = workloads.read_text().splitlines()[0]
    workloads.write_text(first + "\n" + line2 + "\n")
    out = _cli("tasks", "import", definition, "--workloads", workloads, "--into", "task", cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    for phrase in phrases:
        assert phrase in out.stderr, out.stderr


def test_reader_error_carries_the_line_number(tmp_path: Path) -> None:
    from ksearch_agent.fib.workload import read_workloads

    path = tmp_path / "w.jsonl"
    path.write_text('\n{"definition": "d", "workload": {"uuid": "u", "axes": {"n": -1}, "inputs": {}}}\n')
    with pytest.raises(FibFileError) as info:
        read_workloads(path)
    assert info.value.line == 2 and info.value.field == "workload.axes.n"
