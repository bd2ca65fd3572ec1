"""What a user sees from the real ``ksearch`` CLI for each way an OpenAI-compatible endpoint behaves.

The issue "every OpenAI-compatible endpoint works, failures are clean" is tested in-process by
``tests/test_endpoints.py``; this script replays the same scenarios the way a user meets them: the CLI
runs as a subprocess (``python -m ksearch_agent.cli``, stdout a pipe, not a terminal) and talks real HTTP
to the loopback server of ``tests/openai_endpoint.py`` running in a thread here, answering with the
scripts of ``tests/graph_script.py``. Per behaviour it records the command, exit code, seconds, the last
lines of stderr and stdout, whether a traceback appeared, whether the fake API key shows up in the output
or in any file of the run directory, and how many requests the server got. Nothing is assumed: every
exit code and message comes from the run; what the tests expect is kept alongside for comparison.

Usage (from a checkout, CPU is enough): ``python evals/endpoint_behaviours.py [--out DIR] [--only A,B]``;
writes ``DIR/endpoint_behaviours.json`` and ``.md`` (default ``evals/results``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # dev tooling run from a checkout: reuse the tests' server

from graph_script import GOOD, code_answer, edit_answer, initial_answer  # noqa: E402
from openai_endpoint import (  # noqa: E402
    FAST_RETRY,
    NO_JSON_MODE,
    REASONING_MODEL,
    VLLM_WITHOUT_TOOL_PARSER,
    Endpoint,
    Error,
    Reply,
    closed_port_url,
    tool_call,
)

KEY = "sk-test-SECRET-4242"  # a fake key: it must appear nowhere in what the CLI prints or writes
CLI = [sys.executable, "-m", "ksearch_agent.cli"]
# COLUMNS only keeps rich from wrapping messages at 80 columns in a pipe; the text is otherwise the same.
ENV = {**os.environ, "OPENAI_API_KEY": KEY, "KSEARCH_MODEL": "", "KSEARCH_BASE_URL": "", "COLUMNS": "200"}
GOOD_RUN: list[str | Reply | Error] = [initial_answer(), code_answer(GOOD), edit_answer([])]
TAIL = 8


@dataclass
class Case:
    """One server behaviour: the server's script and rule, extra CLI flags, and what the tests expect."""

    what: str
    expect_exit: int
    expect_says: str
    script: list[str | Reply | Error] = field(default_factory=list)
    refuse: Callable[[dict[str, Any]], Error | None] | None = None
    extra: tuple[str, ...] = ()
    model: str = "m"


def search_args(url: str, runs: Path, extra: tuple[str, ...], model: str = "m") -> list[str]:
    return [
        "run", "rmsnorm", "--model", model, "--base-url", url, "--rounds", "1", "--device", "cpu",
        "--runs-root", str(runs), "--confirm-top", "0", "--llm-retries", "1", "--request-timeout", "20",
        *extra,
    ]  # fmt: skip


def seen(text: str) -> list[str]:
    """The lines that matter: plain lines as printed; JSON log lines only at warning or worse, shortened."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            lines.append(line.rstrip())
            continue
        if isinstance(rec, dict) and rec.get("level") in ("warning", "error", "critical"):
            detail = rec.get("note") or rec.get("error") or rec.get("server_said") or ""
            lines.append(f"[{rec['level']}] {rec.get('event')}: {detail}".rstrip(": "))
    return lines


def leaked(out: str, tmp: Path) -> list[str]:
    """Where the fake key appears: ``output`` and/or the files under the run's temporary directory."""
    files = [
        str(p.relative_to(tmp))
        for p in sorted(tmp.rglob("*"))
        if p.is_file() and KEY.encode() in p.read_bytes()
    ]
    return (["output"] if KEY in out else []) + files


def ksearch(name: str, case: Case, args: list[str], tmp: Path, server: Endpoint | None) -> dict[str, Any]:
    """Run the CLI once as a subprocess and record what the user saw."""
    start = time.monotonic()
    p = subprocess.run(CLI + args, env=ENV, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    err, out = (seen(text.replace(str(tmp), "$TMP")) for text in (p.stderr, p.stdout))
    said = next((x for x in out + err if case.expect_says in x), None)  # stdout first: the summary
    if said is None:  # not what the tests expect: show the first plain error line or the last output line
        plain = [x for x in err if not x.startswith("[")]
        said = (plain[-1] if p.returncode and plain else (out or err or ["(nothing)"])[-1]).strip()
    shown = shlex.join(["ksearch", *args]).replace(str(tmp), "$TMP")
    record: dict[str, Any] = {
        "name": name,
        "behaviour": case.what,
        "command": shown,
        "exit_code": p.returncode,
        "seconds": round(seconds, 1),
        "said": said.strip(),
        "stderr_tail": err[-TAIL:],
        "stdout_tail": out[-TAIL:],
        "traceback": "Traceback" in p.stderr + p.stdout,
        "key_leaked_in": leaked(p.stderr + p.stdout, tmp),
        "requests": None if server is None else len(server.requests),
        "expected": {"exit_code": case.expect_exit, "says": case.expect_says},
        "as_expected": p.returncode == case.expect_exit and case.expect_says in p.stdout + p.stderr,
    }
    record["as_expected"] = record["as_expected"] and not record["traceback"] and not record["key_leaked_in"]
    return record


def run_dir(runs: Path) -> Path:
    (only,) = list(runs.iterdir())
    return only


cut = Reply(initial_answer()[:300], finish_reason="length")
broken = Reply(tool_calls=[tool_call("compile", '{"files": {"run.py": "import torch')])
refusal = Error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key", repeat=True)
SIMPLE = {
    "reasoning_model": Case("reasoning model: 400 to `temperature`", 0, "refused a temperature setting",
                            GOOD_RUN, REASONING_MODEL, ("--temperature", "0.2")),
    "vllm_no_tool_parser": Case("vLLM without a tool parser: 400 to any request with tools", 0, "no tool calling",
                                [initial_answer(), code_answer(GOOD), code_answer(GOOD), edit_answer([])],
                                VLLM_WITHOUT_TOOL_PARSER),
    "no_json_mode": Case("no JSON mode: 400 to `response_format`", 0, "no JSON mode", GOOD_RUN, NO_JSON_MODE),
    "cut_at_output_limit": Case("answer cut at the output limit (finish_reason length)", 0, "best candidate",
                                [cut, *GOOD_RUN], extra=("--max-output-tokens", "64")),
    "malformed_tool_args": Case("tool call whose arguments are not valid JSON", 0, "best candidate",
                                [initial_answer(), broken, code_answer(GOOD), edit_answer([])]),
    "rate_limit_429": Case("429 once, then answers", 0, "best candidate",
                           [Error(429, "Rate limit reached", headers=FAST_RETRY), *GOOD_RUN]),
    "refused_key_401": Case("401 invalid_api_key (the server echoes the key)", 3,
                            "answered HTTP 401: refused the API key", refuse=lambda body: refusal),
    "budget_unpriced": Case("--budget-usd with a model no price is known for", 2, "cannot be enforced",
                            extra=("--budget-usd", "1"), model="local-qwen"),
}  # fmt: skip


def special(name: str, tmp: Path) -> list[dict[str, Any]]:
    runs = tmp / "runs"
    if name == "nothing_listening":
        case = Case("nothing listening at the URL", 3, "connection refused", extra=("--llm-retries", "0"))
        return [ksearch(name, case, search_args(closed_port_url(), runs, case.extra), tmp, None)]
    if name == "server_error_500":
        failing = Error(500, "upstream model crashed", headers=FAST_RETRY, repeat=True)
        case = Case("500 that persists past the retries", 3, "answered HTTP 500")
        with Endpoint([initial_answer(), code_answer(GOOD), failing]) as server:
            first = ksearch(name, case, search_args(server.url, runs, ()), tmp, server)
        again = Case("… then `ksearch resume` on another endpoint and model", 0, "best candidate")
        with Endpoint([edit_answer([])]) as other:
            args = ["resume", str(run_dir(runs)), "--base-url", other.url, "--model", "m2"]
            return [first, ksearch("resume_elsewhere", again, args, tmp, other)]
    if name == "show_llm":
        case = Case("a good run (then `ksearch show RUN --llm`)", 0, "best candidate", GOOD_RUN)
        with Endpoint(GOOD_RUN) as server:
            first = ksearch("good_run", case, search_args(server.url, runs, ()), tmp, server)
        show = Case("`ksearch show RUN --llm` on that run", 0, "#2 coder · round 1")
        return [first, ksearch(name, show, ["show", str(run_dir(runs)), "--llm"], tmp, None)]
    case = SIMPLE[name]
    with Endpoint(case.script, refuse=case.refuse) as server:
        return [ksearch(name, case, search_args(server.url, runs, case.extra, case.model), tmp, server)]


NAMES = [*SIMPLE, "nothing_listening", "server_error_500", "show_llm"]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| behaviour | command | exit code | what the user saw (short) | traceback? | key leaked? | requests "
        "| s | as expected? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {cell(r['behaviour'])} | `{cell(r['command'])}` | {r['exit_code']} | {cell(r['said'])} | "
            f"{'yes' if r['traceback'] else 'no'} | {'YES: ' + ', '.join(r['key_leaked_in']) if r['key_leaked_in'] else 'no'} | "
            f"{'—' if r['requests'] is None else r['requests']} | {r['seconds']} | "
            f"{'yes' if r['as_expected'] else 'NO'} |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "evals" / "results")
    ap.add_argument("--only", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)}")
    a = ap.parse_args()
    names = a.only.split(",")
    if unknown := set(names) - set(NAMES):
        ap.error(f"unknown behaviour(s) {sorted(unknown)}; known: {', '.join(NAMES)}")
    rows: list[dict[str, Any]] = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="ksearch-endpoints-") as tmp:
            new = special(name, Path(tmp))
        rows += new
        for r in new:
            print(f"{r['name']}: exit {r['exit_code']} in {r['seconds']} s", file=sys.stderr)
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "torch": version("torch"),
        "langchain_openai": version("langchain-openai"),
        "openai": version("openai"),
        "command": shlex.join(["python", "evals/endpoint_behaviours.py", *sys.argv[1:]]),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "endpoint_behaviours.json").write_text(json.dumps({**info, "rows": rows}, indent=2) + "\n")
    md = [
        f"# The real CLI against OpenAI-compatible endpoint behaviours — {info['date']}",
        "",
        f"Python {info['python']}, torch {info['torch']}, langchain-openai {info['langchain_openai']}, openai "
        f"{info['openai']}; CPU engine. Produced by `{info['command']}`: each command runs as "
        "`python -m ksearch_agent.cli …` with stdout and stderr piped, `OPENAI_API_KEY` set to a fake key "
        "(checked for in the output and every file of the run directory), `KSEARCH_MODEL`/`KSEARCH_BASE_URL` "
        "empty and `COLUMNS=200`, against the loopback server of `tests/openai_endpoint.py`. `$TMP` is a "
        "fresh temporary directory per behaviour. JSON log lines are shown only at warning or worse. "
        "*As expected*: the exit code and message `tests/test_endpoints.py` asserts, no traceback, the key "
        "nowhere.",
        "",
        *table(rows),
        "",
    ]
    for r in rows:
        md += [f"## {r['name']}: {r['behaviour']}", "", f"`{r['command']}` → exit {r['exit_code']}", ""]
        for stream in ("stderr", "stdout"):
            md += [f"{stream} (last lines):", "", "```", *(r[f"{stream}_tail"] or ["(empty)"]), "```", ""]
    (a.out / "endpoint_behaviours.md").write_text("\n".join(md).rstrip() + "\n")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
