"""The built wheel ships tools/, graphs/ and tasks/ inside ksearch_agent and nothing at the top level."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (whl,) = out.glob("ksearch_agent-*.whl")
    return whl


def test_wheel_has_subpackages_and_task_files_under_ksearch_agent(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "ksearch_agent/tools/compile.py",
        "ksearch_agent/tools/correctness.py",
        "ksearch_agent/tools/profile.py",
        "ksearch_agent/graphs/__init__.py",
        "ksearch_agent/worker/main.py",
        "ksearch_agent/tasks/trimul/definition.json",
        "ksearch_agent/tasks/trimul/seeds/triton_simple.py",
        "ksearch_agent/tasks/rmsnorm/seeds/rmsnorm.cu",
        "ksearch_agent/fib/importer.py",
        "ksearch_agent/opponents/judge_side.py",
        "ksearch_agent/tasks/gqa_paged_decode_h32_kv4_d128_ps1/fib_workloads.jsonl",
        "ksearch_agent/tasks/gqa_paged_decode_h32_kv4_d128_ps1/seeds/triton_split_kv.py",
    ):
        assert required in names, required
    assert not [n for n in names if n.split("/")[0] in ("tools", "graphs", "tasks", "tests", "evals")]


def test_installed_wheel_loads_tasks_and_has_no_top_level_tools(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import importlib.util, ksearch_agent\n"
        "from ksearch_agent.task import load_task\n"
        f"assert ksearch_agent.__file__.startswith({str(target)!r}), ksearch_agent.__file__\n"
        "assert load_task('trimul').select(role='benchmark')\n"
        "import ksearch_agent.tools, ksearch_agent.graphs\n"
        "print([importlib.util.find_spec(m) is None for m in ('tools', 'graphs', 'tasks')])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, True]"
