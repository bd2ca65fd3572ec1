"""Unusable input to ``ksearch eval`` ends with exit code 2 and one message naming what was wrong, never a
traceback; under ``--json`` that message is a JSON document on stdout, so a script never reads an empty one.
Every test runs the real command line in a subprocess; none of them gets as far as evaluating anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ksearch_agent.candidate import MAX_FILE_BYTES, MAX_TOTAL_BYTES
from ksearch_agent.task import BUNDLED_TASKS_DIR

SEED = BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "triton_rowwise.py"
GOOD_SOURCE = SEED.read_text()


def _eval(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(cwd / "cache"), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "eval", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def _refused(out: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit code 2, one error line on stderr holding every phrase, nothing on stdout, no traceback anywhere."""
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr and not out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


def test_binary_py_candidate_is_refused_as_binary(tmp_path: Path) -> None:
    (tmp_path / "blob.py").write_bytes(bytes(range(256)) * 8)
    _refused(_eval("rmsnorm", tmp_path / "blob.py", cwd=tmp_path), "blob.py is binary", "UTF-8")


def test_non_utf8_py_candidate_is_refused_with_the_offending_byte(tmp_path: Path) -> None:
    (tmp_path / "latin1.py").write_bytes(GOOD_SOURCE.encode() + "# café\n".encode("latin-1"))
    _refused(_eval("rmsnorm", tmp_path / "latin1.py", cwd=tmp_path), "latin1.py is not UTF-8", "0xe9")


def test_non_utf8_cu_file_the_candidate_names_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text('SOURCE = "kernel.cu"\ndef run(x):\n    return x\n')
    (tmp_path / "kernel.cu").write_bytes(b"// \xff\xfe not UTF-8\n__global__ void k() {}\n")
    _refused(_eval("rmsnorm", tmp_path / "run.py", cwd=tmp_path), "kernel.cu is not UTF-8")


def test_directory_candidate_is_called_a_directory_and_a_py_file_is_asked_for(tmp_path: Path) -> None:
    (tmp_path / "kernels").mkdir()
    _refused(
        _eval("rmsnorm", tmp_path / "kernels", cwd=tmp_path), "kernels is a directory", "expected a .py file"
    )


def test_missing_candidate_is_reported_not_found(tmp_path: Path) -> None:
    _refused(_eval("rmsnorm", tmp_path / "nowhere.py", cwd=tmp_path), "nowhere.py not found")


def test_thirty_megabyte_candidate_is_refused_for_its_size(tmp_path: Path) -> None:
    with (tmp_path / "huge.py").open("wb") as fh:  # sparse: the size is refused before anything is read
        fh.truncate(30 * 1000 * 1000)
    assert MAX_FILE_BYTES == 1024 * 1024
    _refused(
        _eval("rmsnorm", tmp_path / "huge.py", cwd=tmp_path), "huge.py is 28.6 MiB", "limit is 1 MiB per file"
    )


def test_candidate_whose_cuda_files_total_over_the_limit_is_refused(tmp_path: Path) -> None:
    names = [f"part{i}.cu" for i in range(5)]
    (tmp_path / "run.py").write_text(f"SOURCES = {names!r}\ndef run(x):\n    return x\n")
    for name in names:  # each under the per-file limit, together over the total one
        (tmp_path / name).write_text("// filler\n" * (MAX_TOTAL_BYTES // 5 // 10 + 1000))
    _refused(_eval("rmsnorm", tmp_path / "run.py", cwd=tmp_path), "total more than 4 MiB")


@pytest.mark.parametrize("value", [",", " , ,", ""])
def test_workloads_option_naming_nothing_is_refused_not_read_as_all(tmp_path: Path, value: str) -> None:
    out = _eval("rmsnorm", SEED, "--cpu", "--workloads", value, cwd=tmp_path)
    _refused(out, "names no workload", "b1, b7, b64", "leave the option out")


def test_unknown_workload_ids_are_each_named(tmp_path: Path) -> None:
    out = _eval("rmsnorm", SEED, "--cpu", "--workloads", "b1,b3,wide", cwd=tmp_path)
    _refused(out, "no workload 'b3', 'wide'", "known: b1, b7")


def test_unknown_option_value_is_refused_with_the_value(tmp_path: Path) -> None:
    _refused(
        _eval("rmsnorm", SEED, "--protocol", "fastest", cwd=tmp_path), "--protocol", "'hot'", "'fastest'"
    )


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["rmsnorm", "blob.py"], "is binary"),
        (["rmsnorm", "."], "is a directory"),
        (["rmsnorm", str(SEED), "--cpu", "--workloads", ","], "names no workload"),
        (["nope", str(SEED)], "no such task"),
        (["rmsnorm", str(SEED), "--trials", "0"], "--trials"),
        (["rmsnorm"], "Missing argument"),
    ],
)
def test_json_errors_are_one_json_document_on_stdout(tmp_path: Path, args: list[str], phrase: str) -> None:
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02" * 100)
    out = _eval(*args, "--json", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "ERROR" and phrase in doc["error"]


def test_a_reference_that_breaks_its_own_definition_is_blamed_not_the_candidate(tmp_path: Path) -> None:
    import shutil

    task = tmp_path / "rms_bad_ref"
    shutil.copytree(BUNDLED_TASKS_DIR / "rmsnorm", task)
    ref = task / "reference.py"
    ref.write_text(
        ref.read_text().replace("def run(", "def _run(")
        + "\n\ndef run(*args):\n    return _run(*args).float()\n"
    )
    out = _eval(task, SEED, "--cpu", "--workloads", "b1", cwd=tmp_path)
    _refused(out, "reference.py", "float32", "bfloat16")


def test_the_hot_protocol_is_accepted(tmp_path: Path) -> None:
    out = _eval("rmsnorm", SEED, "--protocol", "hot", "--workloads", "b1", "--cpu", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
