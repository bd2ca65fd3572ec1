"""`ksearch report`, `show --json` and `runs` on real run directories: a fresh CPU playbook run (made once, through
the CLI, so the end-of-run report is tested too), a run that ended in an error, and a hand-built run with GPU-style
measurements (a CPU run measures no speed, so its charts would say so and draw nothing else)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ksearch_agent.candidate import Candidate
from ksearch_agent.context import SearchContext
from ksearch_agent.llm.usage import NodeUsage, UsageLedger
from ksearch_agent.report import write_compare_report, write_run_report
from ksearch_agent.report.history import attempts, best_curves, usage_per_round
from ksearch_agent.report.run_report import load_run_report
from ksearch_agent.report.rundb import open_run, usage_history
from ksearch_agent.report.summary import show_document
from ksearch_agent.results import (
    CorrectnessResult,
    EvalReport,
    ProfileResult,
    WorkloadCorrectness,
    WorkloadTiming,
)
from ksearch_agent.store import RunStore
from ksearch_agent.world_model import Solution, WorldModel

PLOTS = ("plot-progress", "plot-workloads", "plot-timeline", "plot-usage")


def _cli(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KSEARCH_MODEL", "KSEARCH_BASE_URL")}
    env.update({"COLUMNS": "200", **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def cli_run(root: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One real CPU playbook run of one round through `ksearch run` (its report is written at the end)."""
    out = _cli(
        "run",
        "rmsnorm",
        "--rounds",
        "1",
        "--device",
        "cpu",
        "--runs-root",
        str(root / "runs"),
        cwd=root,
        env_extra={"KSEARCH_CACHE_DIR": str(root / "cache")},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = [d for d in (root / "runs").iterdir() if d.name != "rmsnorm-error"]
    return run_dir, out


@pytest.fixture(scope="module")
def error_run(root: Path) -> Path:
    """A run that ends in an error at once: the LLM policy with no model configured."""
    from ksearch_agent.runner import run_search

    final = run_search(
        "rmsnorm",
        SearchContext(policy="llm", model=None, device="cpu", runs_root=str(root / "runs")),
        run_id="rmsnorm-error",
    )
    assert final["status"].startswith("error")
    return root / "runs" / "rmsnorm-error"


def _measured_run(run_dir: Path) -> Path:
    """A run as a GPU machine would leave it: three rounds (a pass, a failure then a repaired pass, a compile
    error), timed workloads with a baseline and roofline fractions, a duel, and LLM usage per round."""
    store = RunStore(run_dir)
    store.set_meta("run_id", run_dir.name)
    store.set_meta("task", "rmsnorm")
    store.set_meta("context", {"policy": "llm", "model": "gpt-4.1", "language": "triton", "device": "gpu"})
    wm = WorldModel.new("RMSNorm is memory bound")
    act = {"difficulty": 1, "score": 0.9, "expected_speedup": 1.5}
    nodes = {1: wm.add_node("root", "row per program", action={"title": "row kernel", **act})}
    nodes[2] = wm.add_node(nodes[1], "wider loads", action={"title": "16-byte loads", **act})
    nodes[3] = wm.add_node("root", "split row", action={"title": "two-pass kernel", **act})
    store.save_snapshot(0, wm.snapshot(), "initial")
    plan: dict[int, list[tuple[str, str, float | None]]] = {
        1: [("coder", "PASSED", 1.5)],
        2: [("coder", "INCORRECT_NUMERICAL", None), ("repair", "PASSED", 1.9)],
        3: [("coder", "COMPILE_ERROR", None)],
    }
    ledger, parent = UsageLedger(), None
    for rnd, tries in plan.items():
        store.log_event(rnd, "cycle_start", {"action_id": nodes[rnd], "title": f"action of round {rnd}"})
        for k, (origin, status, speed) in enumerate(tries, 1):
            cand = Candidate(language="triton", files={"run.py": f"def run(x):\n    return x  # {rnd}.{k}\n"})
            store.save_candidate(
                cand, round=rnd, action_node=nodes[rnd], parent_id=parent, origin=origin, attempt=k
            )
            store.log_event(rnd, "candidate", {"candidate_id": cand.id, "origin": origin, "attempt": k})
            corr = CorrectnessResult(
                status=status,
                checked="gpu",
                device="H100",
                workloads=[  # type: ignore[arg-type]
                    WorkloadCorrectness(
                        workload=w,
                        status=status,
                        max_abs_error=1e-3,  # type: ignore[arg-type]
                        log="" if status == "PASSED" else "mismatch",
                    )
                    for w in ("b1", "b64")
                ],
            )
            prof = None
            if speed is not None:
                prof = ProfileResult(
                    measured=True,
                    device="H100",
                    workloads=[
                        WorkloadTiming(
                            workload=w,
                            status="PASSED",
                            latency_ms=0.01 * i / speed,
                            speedup=speed,
                            reference_latency_ms=0.01 * i,
                            baseline_latency_ms=0.009 * i,
                            roofline_fraction=0.3 + 0.1 * i,
                        )
                        for i, w in ((1, "b1"), (2, "b64"))
                    ],
                )
                prof.summarize()
            store.save_evaluation(
                EvalReport(
                    task="rmsnorm",
                    candidate_id=cand.id,
                    language="triton",
                    status=status,  # type: ignore[arg-type]
                    correctness=corr,
                    profile=prof,
                )
            )
            if status == "PASSED":
                wm.attach_solution(
                    nodes[rnd], Solution(candidate_id=cand.id, geomean_speedup=speed, round=rnd)
                )
                parent = cand.id
        if not any(t[1] == "PASSED" for t in tries):
            wm.mark_too_hard(nodes[rnd], "compile error")
        coder = ledger.by_node.setdefault("coder", NodeUsage())
        coder.calls, coder.input_tokens, coder.output_tokens = (
            coder.calls + 1,
            coder.input_tokens + 1000 * rnd,
            coder.output_tokens + 300,
        )
        coder.cost_usd = (coder.cost_usd or 0.0) + 0.01
        store.save_snapshot(rnd, wm.snapshot(), f"after action {nodes[rnd]}")
        store.save_usage(rnd, ledger.model_dump())
    store.set_meta(
        "confirmed_best",
        {
            "candidate_id": parent,
            "contenders": [parent, "0123456789ab"],
            "duels": [
                {
                    "challenger": "0123456789ab",
                    "champion": parent,
                    "ratio": 0.98,
                    "winner": parent,
                    "protocol": "flushed",
                    "device": "H100",
                }
            ],
        },
    )
    store.log_event(3, "finished", {"status": "max_rounds", "best": None})
    store.close()
    _write_coder_transcript(run_dir, round_no=2)
    return run_dir


def _write_coder_transcript(run_dir: Path, round_no: int) -> None:
    """Checkpoints as the search graph leaves them: state with the round and the coder's tool-call transcript."""
    import sqlite3

    from langchain_core.messages import AIMessage, ToolMessage, messages_to_dict
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        round: int
        coder_transcript: list[dict[str, object]]

    talk = messages_to_dict(
        [
            AIMessage(
                content="Let me compile first.",
                tool_calls=[{"name": "compile", "args": {"files": "run.py"}, "id": "call1"}],
            ),
            ToolMessage("OK: 1 kernel", tool_call_id="call1"),
        ]
    )
    graph = StateGraph(State)
    graph.add_node("coder", lambda state: {"round": round_no, "coder_transcript": talk})
    graph.add_node("planner", lambda state: {"round": round_no + 1, "coder_transcript": []})
    graph.add_edge(START, "coder")
    graph.add_edge("coder", "planner")
    graph.add_edge("planner", END)
    conn = sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False)
    try:
        graph.compile(checkpointer=SqliteSaver(conn)).invoke(
            {}, {"configurable": {"thread_id": run_dir.name}}
        )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def measured_run(root: Path) -> Path:
    return _measured_run(root / "measured" / "rmsnorm-measured")


class _Refs(HTMLParser):
    """Every src/href value and every tag name of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]


def _refs(page: str) -> _Refs:
    parser = _Refs()
    parser.feed(page)
    return parser


def test_ksearch_run_writes_the_report_and_prints_its_path(
    cli_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, out = cli_run
    assert f"report: {run_dir / 'report.html'}" in out.stdout
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_the_report_is_self_contained_and_has_the_plots_and_the_tree(
    cli_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, _ = cli_run
    page = (run_dir / "report.html").read_text()
    refs = _refs(page)
    assert refs.refs and all(r.startswith("#") for r in refs.refs), [
        r for r in refs.refs if not r.startswith("#")
    ]
    assert not {"link", "img", "iframe", "object", "embed"} & refs.tags
    assert "@import" not in page and not re.search(r"url\((?!#)", page)
    for plot in PLOTS:
        assert re.search(f'<figure class="plot" id="{plot}"><svg ', page), plot
    assert len(re.findall(r'\bid="([^"]+)"', page)) == len(
        set(re.findall(r'\bid="([^"]+)"', page))
    )  # unique ids
    snapshots = open_run(run_dir).snapshots()
    assert page.count('class="tree-frame"') == len(snapshots) == 2
    assert 'data-node="n1"' in page and "best-path" in page and "row-per-program kernel" in page
    assert "finished" in page and "max_rounds" in page and "playbook" in page


def _browser() -> str | None:
    return next(
        (
            b
            for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
            if shutil.which(b)
        ),
        None,
    )


PROBE = """<script>
var frames = document.querySelectorAll(".tree-frame"), slider = document.getElementById("round-slider");
slider.value = "0"; slider.dispatchEvent(new Event("input"));
console.log("probe svgs=" + document.querySelectorAll("figure.plot svg").length + " frames=" + frames.length
            + " slider=" + (!frames[0].hidden && frames[frames.length - 1].hidden));
</script></body>"""


def test_the_report_loads_in_headless_chromium_without_console_errors(
    cli_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    run_dir, _ = cli_run
    # A probe at the end of the page logs what the browser built and moves the slider; every other console line
    # (an error, an exception, a resource that failed to load) would show up beside it.
    page = tmp_path / "report.html"
    page.write_text((run_dir / "report.html").read_text().replace("</body>", PROBE))
    shot = tmp_path / "shot.png"
    out = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line]
    assert len(console) == 1 and '"probe svgs=4 frames=2 slider=true"' in console[0], (
        console or out.stderr[-3000:]
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500 and pixels.std() > 0.05  # not a blank page


def test_show_json_round_trips(cli_run: tuple[Path, subprocess.CompletedProcess[str]], root: Path) -> None:
    run_dir, _ = cli_run
    out = _cli("show", str(run_dir), "--json", cwd=root)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc == json.loads(json.dumps(show_document(run_dir)))
    assert WorldModel.model_validate(doc["world_model"]).snapshot() == doc["world_model"]
    store = open_run(run_dir)
    best = store.best_candidate()
    assert best is not None and doc["summary"]["best"]["candidate_id"] == best["id"]
    assert doc["summary"]["status"] == "finished" and doc["summary"]["stop_reason"] == "max_rounds"
    assert (
        doc["summary"]["policy"] == "playbook" and doc["summary"]["lineage"][0]["id"] == best["action_node"]
    )
    assert [c["id"] for c in doc["candidates"]] == [c["id"] for c in store.candidates()]
    assert (
        doc["best_workloads"][0]["status"] == "PASSED" and "def run(" in doc["best_source"]["files"]["run.py"]
    )
    text = _cli("show", str(run_dir), cwd=root)
    assert text.returncode == 0 and "status: finished (max_rounds)" in text.stdout
    assert "policy playbook" in text.stdout and "lineage: n1" in text.stdout


def test_runs_lists_both_runs(
    cli_run: tuple[Path, subprocess.CompletedProcess[str]], error_run: Path, root: Path
) -> None:
    run_dir, _ = cli_run
    listed = _cli("runs", str(root / "runs"), "--json", cwd=root)
    assert listed.returncode == 0, listed.stderr
    runs = {r["run_id"]: r for r in json.loads(listed.stdout)}
    assert set(runs) == {run_dir.name, "rmsnorm-error"}
    assert runs[run_dir.name]["status"] == "finished" and runs[run_dir.name]["candidates"] == 1
    assert runs["rmsnorm-error"]["status"] == "error" and runs["rmsnorm-error"]["best"] is None
    table = _cli("runs", str(root / "runs"), cwd=root)
    assert table.returncode == 0 and run_dir.name in table.stdout and "rmsnorm-error" in table.stdout
    assert "finished (max_rounds)" in table.stdout and "playbook" in table.stdout


def test_the_report_of_a_run_that_ended_in_an_error_still_renders(error_run: Path, root: Path) -> None:
    out = _cli("report", str(error_run), "--out", str(root / "error.html"), cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    page = (root / "error.html").read_text()
    assert 'class="status error"' in page and "no model configured" in page
    assert all(f'id="{plot}"' in page for plot in PLOTS) and "No world model was built" in page
    assert "no attempt was made" in page


def test_a_measured_run_draws_its_curves_workloads_duels_tree_and_usage(
    measured_run: Path, root: Path
) -> None:
    store = open_run(measured_run)
    records = attempts(store)
    assert [(r.origin, r.status) for r in records] == [
        ("coder", "PASSED"),
        ("coder", "INCORRECT_NUMERICAL"),
        ("repair", "PASSED"),
        ("coder", "COMPILE_ERROR"),
    ]
    assert [(p.evaluation, p.round, p.best) for p in best_curves(records)["flushed"]] == [
        (1, 1, 1.5),
        (3, 2, 1.9),
    ]
    assert [
        (u.round, u.input_tokens, u.output_tokens) for u in usage_per_round(usage_history(measured_run))
    ] == [(1, 1000, 300), (2, 2000, 300), (3, 3000, 300)]
    page = write_run_report(measured_run).read_text()
    progress = page[page.index('id="plot-progress"') : page.index('id="plot-workloads"')]
    assert "flushed" in progress and "evaluations" in progress and "round" in progress
    bars = page[
        page.index('id="plot-workloads"') : page.index("</figure>", page.index('id="plot-workloads"'))
    ]
    assert "baseline" in bars and "reference" in bars and "50% of roofline" in bars
    assert "1.900x the reference (flushed protocol)" in page and "0.980x" in page  # the best and its duel
    assert page.count('class="tree-frame"') == 4 and 'class="node failed family"' in page
    best_box = re.search(r'<div class="node (solved refinement best-path)" data-node="n2"', page)
    assert best_box is not None and "repair #2" in page
    with_transcript = [r for r in load_run_report(measured_run).attempts if r.transcript]
    assert [(r.round, r.origin) for r in with_transcript] == [(2, "coder")]  # the coder's, not the repair's
    assert "Let me compile first.\n[tool calls: compile(" in with_transcript[0].transcript
    assert "tool: OK: 1 kernel" in page
    usage = page[page.index('id="plot-usage"') :]
    assert "coder" in usage and "3 calls" in usage and "$0.0300" in page


def test_compare_overlays_the_runs(
    measured_run: Path, cli_run: tuple[Path, subprocess.CompletedProcess[str]], root: Path
) -> None:
    run_dir, _ = cli_run
    page = write_compare_report([measured_run, run_dir], root / "compare.html").read_text()
    figure = page[page.index('id="plot-compare"') :]
    assert "rmsnorm-measured (llm, gpt-4.1) · flushed" in figure
    assert run_dir.name in page and "Without a measured speedup (not drawn)" in page
    out = _cli("report", str(run_dir), str(measured_run), cwd=root)
    assert out.returncode == 2 and "--compare" in out.stderr
