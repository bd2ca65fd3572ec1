"""Runs land in a run directory that `ksearch show` and `ksearch resume` read; the CLI explains what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graph_script import GOOD, code_answer, edit_answer, initial_answer
from openai_endpoint import NO_JSON_MODE, Endpoint
from scripted_model import ScriptedChatModel

from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.llm.chat import register_model, unregister_model
from ksearch_agent.resources import register_engine
from ksearch_agent.runner import resume_search, run_search


@pytest.fixture
def finished_run(tmp_path: Path, cpu_engine: Engine) -> Any:
    register_engine("cpu", cpu_engine)
    register_model("scripted-run", ScriptedChatModel([initial_answer(), code_answer(GOOD), edit_answer([])]))
    ctx = SearchContext(
        model="scripted-run", device="cpu", runs_root=str(tmp_path / "runs"), max_rounds=1, trials=1
    )
    events: list[dict[str, Any]] = []
    try:
        final = run_search("rmsnorm", ctx, run_id="cli-run", on_event=events.append)
    finally:
        unregister_model("scripted-run")
    return final, events, ctx


def test_run_search_streams_progress_and_returns_the_output_schema(finished_run: Any) -> None:
    final, events, _ = finished_run
    assert {"best", "eval_summary", "world_model", "status", "run_dir", "lineage"} <= set(final)
    assert final["eval_summary"]["status"] == "PASSED" and Path(final["run_dir"]).name == "cli-run"
    assert (Path(final["run_dir"]) / "checkpoints.sqlite").is_file()
    assert any(e["event"] == "new_best" for e in events)


def test_resume_of_a_finished_run_changes_nothing(finished_run: Any) -> None:
    final, _, _ = finished_run
    again = resume_search(final["run_dir"])
    assert again["best"] == final["best"] and again["status"] == final["status"]


def _cli(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KSEARCH_MODEL", "KSEARCH_BASE_URL")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_show_prints_candidates_best_kernel_and_the_tree(finished_run: Any, tmp_path: Path) -> None:
    final, _, _ = finished_run
    out = _cli("show", final["run_dir"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert final["best"]["candidate_id"] in out.stdout and "world model" in out.stdout
    assert "n1" in out.stdout and "row-per-program" in out.stdout and "def run(" in out.stdout


def test_llm_policy_without_a_model_exits_two_and_points_at_the_playbook(tmp_path: Path) -> None:
    out = _cli("run", "rmsnorm", "--policy", "llm", "--device", "cpu", cwd=tmp_path)
    assert out.returncode == 2 and "--policy playbook" in out.stderr and "--model" in out.stderr


def test_run_without_a_model_uses_the_playbook_and_says_so(tmp_path: Path) -> None:
    out = _cli(
        "run",
        "rmsnorm",
        "--rounds",
        "2",
        "--device",
        "cpu",
        "--runs-root",
        str(tmp_path / "runs"),
        cwd=tmp_path,
        env_extra={"KSEARCH_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "using the playbook policy" in out.stderr
    assert "status: max_rounds" in out.stdout and "speed not measured" in out.stdout


def test_show_of_a_missing_run_exits_two(tmp_path: Path) -> None:
    out = _cli("show", "no-such-run", cwd=tmp_path)
    assert out.returncode == 2 and "no run directory" in out.stderr


def _search(tmp_path: Path, url: str, model: str = "m") -> subprocess.CompletedProcess[str]:
    """``ksearch run`` as its own process against ``url`` (a loopback server in this test's process)."""
    return _cli(
        "run", "rmsnorm", "--model", model, "--base-url", url, "--rounds", "1", "--device", "cpu",
        "--runs-root", str(tmp_path / "runs"),
        cwd=tmp_path,
        env_extra={"KSEARCH_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip


@pytest.mark.enable_socket
def test_a_server_without_json_mode_is_asked_again_plainly(tmp_path: Path) -> None:
    with Endpoint([initial_answer(), code_answer(GOOD), edit_answer([])], refuse=NO_JSON_MODE) as server:
        out = _search(tmp_path, server.url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "status: max_rounds" in out.stdout


@pytest.mark.enable_socket
def test_ksearch_run_talks_to_an_openai_compatible_endpoint(tmp_path: Path) -> None:
    with Endpoint([initial_answer(), code_answer(GOOD), edit_answer([])]) as server:
        out = _search(tmp_path, server.url, model="served-model")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "best candidate" in out.stdout and "speed not measured" in out.stdout
    requests = server.requests
    assert len(requests) == 3 and all(r["model"] == "served-model" for r in requests)
    assert "world model" in requests[0]["messages"][-1]["content"]
    assert requests[0]["response_format"] == {"type": "json_object"} and "response_format" not in requests[1]
    from ksearch_agent.llm.usage import UsageLedger
    from ksearch_agent.store import RunStore

    ledger = UsageLedger.model_validate(RunStore(next((tmp_path / "runs").iterdir())).latest_usage())
    assert ledger.by_node["planner"].calls == 1 and ledger.by_node["coder"].calls == 1
    assert (
        ledger.input_tokens > 500 and ledger.output_tokens > 100
    )  # usage parsed from the endpoint's answers


def test_export_writes_the_best_kernel_that_eval_accepts(finished_run: Any, tmp_path: Path) -> None:
    final, _, _ = finished_run
    out = _cli("export", final["run_dir"], str(tmp_path / "best.py"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from ksearch_agent.resources import store_for

    best = store_for(final["run_dir"]).load_candidate(final["best"]["candidate_id"])
    assert (tmp_path / "best.py").read_text() == best.files[best.entry]
    check = _cli(
        "eval",
        "rmsnorm",
        str(tmp_path / "best.py"),
        "--cpu",
        "--json",
        cwd=tmp_path,
        env_extra={"KSEARCH_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert check.returncode == 0 and '"status": "PASSED"' in check.stdout
    refuse = _cli("export", final["run_dir"], str(tmp_path / "gm.py"), "--gpumode", cwd=tmp_path)
    assert (
        refuse.returncode == 1 and "custom_kernel" in refuse.stderr
    )  # rmsnorm kernels have no GPUMode entry


def test_seed_code_is_stored_and_given_to_the_coder_for_root_actions(
    tmp_path: Path, cpu_engine: Engine
) -> None:
    from ksearch_agent.playbook import playbook_seed_files
    from ksearch_agent.resources import store_for
    from ksearch_agent.task import load_task

    register_engine("cpu", cpu_engine)
    changed = GOOD.replace("NUM_WARPS = 8", "NUM_WARPS = 4")  # the seed itself is GOOD; the coder changes it
    model = ScriptedChatModel([initial_answer(), code_answer(changed), edit_answer([])])
    register_model("scripted-seed", model)
    seed_files = playbook_seed_files(load_task("rmsnorm"))
    ctx = SearchContext(
        model="scripted-seed", device="cpu", runs_root=str(tmp_path / "runs"), max_rounds=1, trials=1
    )
    try:
        final = run_search("rmsnorm", ctx, seed_code=seed_files, run_id="seeded")
    finally:
        unregister_model("scripted-seed")
    rows = store_for(final["run_dir"]).candidates()
    assert rows[0]["origin"] == "seed" and rows[1]["parent_id"] == rows[0]["id"]
    coder_prompt = str(model.calls[1][1].content)
    assert (
        "Start from the parent kernel" in coder_prompt and seed_files["run.py"].strip()[:200] in coder_prompt
    )
