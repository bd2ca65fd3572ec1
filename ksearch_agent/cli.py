"""``ksearch`` command line: list tasks and evaluate a candidate kernel."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, cast, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from ksearch_agent.candidate import Candidate, CandidateError
from ksearch_agent.log import configure_logging
from ksearch_agent.results import EvalReport, TimingProtocol
from ksearch_agent.task import TaskFileError, list_task_names, load_task

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="K-Search: GPU kernel search with a world model."
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _main(
    log_level: Annotated[str, typer.Option(help="structlog level for progress records")] = "WARNING",
) -> None:
    configure_logging(log_level, force=True)  # per invocation: stderr may differ (tests, embedding)


tasks_app = typer.Typer(
    invoke_without_command=True, help="Table of bundled tasks; `ksearch tasks import` adds a FIB definition."
)
app.add_typer(tasks_app, name="tasks")


@tasks_app.callback()
def tasks_cmd(ctx: typer.Context) -> None:
    """Table of bundled tasks, their axes and workload counts."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="ksearch tasks")
    for col in ("task", "op_type", "axes", "workloads", "cpu subset", "benchmarks", "seeds"):
        table.add_column(col)
    for name in list_task_names():
        try:
            t = load_task(name)
        except TaskFileError as exc:
            table.add_row(name, "[red]invalid[/red]", str(exc), "", "", "", "")
            continue
        axes = ", ".join(
            f"{n}={a.value}" if a.type == "const" else f"{n} (var)" for n, a in t.definition.axes.items()
        )
        table.add_row(
            name,
            t.definition.op_type,
            axes,
            str(len(t.workloads)),
            str(len(t.select(cpu=True))),
            str(len(t.select(role="benchmark"))),
            ", ".join(p.name for p in t.seeds),
        )
    console.print(table)


@tasks_app.command("import")
def tasks_import_cmd(
    definition: Annotated[Path, typer.Argument(help="FlashInfer-Bench Definition JSON")],
    workloads: Annotated[Path | None, typer.Option(help="FIB workloads JSONL for this definition")] = None,
    blobs: Annotated[
        Path | None, typer.Option(help="FIB dataset root the workloads' safetensors paths are relative to")
    ] = None,
    into: Annotated[Path | None, typer.Option(help="task directory to write (default: ./<name>)")] = None,
) -> None:
    """Make a task directory from FIB files, for `ksearch eval DIR ...` and `ksearch run DIR`.

    Exit 0 on success, 2 when a file is missing or malformed (the error names the file, the line and the field).
    Safetensors blobs that are not under --blobs are synthesised from the axes and constraints, with a warning.
    """
    from ksearch_agent.fib.importer import import_definition

    try:
        result = import_definition(definition, workloads, blobs=blobs, into=into)
    except TaskFileError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True, highlight=False)
    t = result.task
    console.print(
        f"task {t.name} written to {t.directory} ({len(t.workloads)} workloads, "
        f"{len(t.select(cpu=True))} in the CPU subset"
        + (f", library opponent {t.definition.opponent}" if t.definition.opponent else "")
        + ")",
        soft_wrap=True,
        highlight=False,
    )


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _print_report(report: EvalReport) -> None:
    corr, prof = report.correctness, report.profile
    timing = {w.workload: w for w in (prof.workloads if prof else [])}
    table = Table(
        title=f"{report.task} · candidate {report.candidate_id} ({report.language}) · {corr.device}"
    )
    library = any(t.library_latency_ms or t.library_plan_latency_ms for t in timing.values())
    columns = ["workload", "status", "max abs err", "max rel err", "latency ms", "ref ms", "speedup"]
    columns += ["library ms", "lib+plan ms", "vs library"] if library else []
    for col in [*columns, "% roofline"]:
        table.add_column(col, justify="right" if col not in ("workload", "status") else "left")
    for w in corr.workloads:
        t = timing.get(w.workload)
        colour = "green" if w.status == "PASSED" else "red"
        cells = [
            w.workload,
            f"[{colour}]{w.status}[/{colour}]",
            _fmt(w.max_abs_error, ".2e"),
            _fmt(w.max_rel_error, ".2e"),
            _fmt(t.latency_ms if t else None, ".4f"),
            _fmt(t.reference_latency_ms if t else None, ".4f"),
            _fmt(t.speedup if t else None, ".2f"),
        ]
        if library:
            ratio = (
                t.library_latency_ms / t.latency_ms if t and t.library_latency_ms and t.latency_ms else None
            )
            cells += [
                _fmt(t.library_latency_ms if t else None, ".4f"),
                _fmt(t.library_plan_latency_ms if t else None, ".4f"),
                _fmt(ratio, ".2f"),
            ]
        cells.append(_fmt(100 * t.roofline_fraction if t and t.roofline_fraction else None, ".1f"))
        table.add_row(*cells)
    console.print(table)
    for w in corr.workloads:
        if w.status != "PASSED" and w.log:
            err_console.print(f"[bold]{w.workload}[/bold]: {w.log.strip()[-1500:]}")
    if corr.note:
        console.print(f"[dim]{corr.note}[/dim]")
    if prof is not None:
        if prof.measured:
            console.print(
                f"geomean latency {_fmt(prof.geomean_latency_ms, '.4f')} ms · reference "
                f"{_fmt(prof.geomean_reference_ms, '.4f')} ms · speedup {_fmt(prof.geomean_speedup, '.2f')}x "
                f"({prof.protocol} protocol, {prof.device})"
            )
        if prof.library_score is not None:
            console.print(
                f"score vs {(prof.opponent or {}).get('library', 'the library')}: "
                f"{prof.library_score:.1f} (plan() outside the timer; 100 = as fast as the library) · "
                f"{_fmt(prof.library_score_with_plan, '.1f')} with plan() timed (FlashInfer-Bench 0.1 style)"
            )
        if prof.opponent and prof.opponent.get("skipped"):
            console.print(
                f"[yellow]library opponent skipped: {escape(str(prof.opponent['skipped']))}[/yellow]"
            )
        for t in prof.workloads:
            if t.library_status and t.library_status != "PASSED":
                err_console.print(
                    f"[yellow]{t.workload}: library {t.library_status}: {t.library_log}[/yellow]"
                )
        if prof.note:
            console.print(f"[yellow]{prof.note}[/yellow]")
        if prof.counters:
            for k in prof.counters.get("kernels", []):
                console.print(
                    f"ncu {k.get('kernel', '?')[:48]}: DRAM {k.get('dram_throughput_pct')}% · SM "
                    f"{k.get('sm_throughput_pct')}% · occupancy {k.get('achieved_occupancy_pct')}%"
                )
            if prof.counters.get("note"):
                console.print(f"[yellow]{prof.counters['note']}[/yellow]")
    colour = "green" if report.status == "PASSED" else "red"
    console.print(f"status: [{colour}]{report.status}[/{colour}]  ({report.seconds:.1f}s)")


def _json_doc(report: EvalReport) -> dict[str, object]:
    timing = {w.workload: w for w in (report.profile.workloads if report.profile else [])}
    rows = []
    for w in report.correctness.workloads:
        t = timing.get(w.workload)
        rows.append(
            {
                "id": w.workload,
                "status": w.status if not t or t.status == "PASSED" else t.status,
                "max_abs_error": w.max_abs_error,
                "max_rel_error": w.max_rel_error,
                "latency_ms": t.latency_ms if t else None,
                "reference_latency_ms": t.reference_latency_ms if t else None,
                "speedup": t.speedup if t else None,
                "roofline_fraction": t.roofline_fraction if t else None,
                "library_latency_ms": t.library_latency_ms if t else None,
                "library_plan_latency_ms": t.library_plan_latency_ms if t else None,
                "library_status": t.library_status if t else None,
                "log": w.log or (t.log if t else ""),
            }
        )
    prof = report.profile
    return {
        "task": report.task,
        "candidate_id": report.candidate_id,
        "language": report.language,
        "status": report.status,
        "checked": report.correctness.checked,
        "device": report.correctness.device,
        "note": report.correctness.note,
        "speed_measured": bool(prof and prof.measured),
        "geomean_speedup": prof.geomean_speedup if prof else None,
        "geomean_latency_ms": prof.geomean_latency_ms if prof else None,
        "geomean_reference_ms": prof.geomean_reference_ms if prof else None,
        "library_score": prof.library_score if prof else None,
        "library_score_with_plan": prof.library_score_with_plan if prof else None,
        "opponent": prof.opponent if prof else None,
        "workloads": rows,
        "counters": prof.counters if prof else None,
        "seconds": report.seconds,
    }


EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
"""``ksearch eval`` exit codes: every workload passed; the candidate failed (or was not verified); the input
was unusable (task, candidate file, option value), nothing evaluated; the engine itself failed."""


def _eval_error(message: str, as_json: bool, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """End ``eval`` with ``code`` and a one-line error: on stderr, or as the JSON document under ``--json``
    (so a script always gets JSON on stdout)."""
    if as_json:
        sys.stdout.write(json.dumps({"status": "ERROR", "error": message}, indent=1) + "\n")
    else:
        err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


class _EvalCommand(TyperCommand):
    """``eval`` whose command-line usage errors (a bad option value, a missing argument) also come out as the
    JSON error document when ``--json`` is among the arguments; without it, Typer's usual message."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        wants_json = "--json" in args  # before parsing: the parser consumes ``args`` in place
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            if not wants_json:
                raise
            _eval_error(exc.format_message() if hasattr(exc, "format_message") else str(exc), True)


def _workload_ids(text: str | None, task_name: str, known: list[str]) -> list[str] | None:
    """The ids ``--workloads`` names, in order and without repeats; None when the option was not given.
    Raises ValueError for an option that names nothing (``,`` or blanks: refused rather than read as "all")
    and for ids the task does not have, naming them."""
    if text is None:
        return None
    ids = list(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    if not ids:
        raise ValueError(
            f"--workloads {text!r} names no workload; give comma-separated ids (task {task_name!r} "
            f"has {', '.join(known)}) or leave the option out to run every workload"
        )
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(
            f"task {task_name!r} has no workload {', '.join(map(repr, unknown))} (from --workloads); "
            f"known: {', '.join(known)}"
        )
    return ids


@app.command("eval", cls=_EvalCommand)
def eval_cmd(
    task: Annotated[str, typer.Argument(help="bundled task name or a task directory")],
    file: Annotated[
        Path,
        typer.Argument(
            help="candidate .py (run(...) or GPUMode custom_kernel(data)), or a FIB Solution .json"
        ),
    ],
    workloads: Annotated[str | None, typer.Option(help="comma-separated workload ids (default: all)")] = None,
    cpu: Annotated[
        bool, typer.Option("--cpu", help="force the CPU (Triton interpreter, CPU workloads)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    trials: Annotated[int, typer.Option(min=1, help="correctness trials per workload")] = 2,
    language: Annotated[str | None, typer.Option(help="triton|cuda|python (default: detected)")] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="flushed|hot|gpumode timing protocol (hot: no L2 flush, the same inputs each call)"
        ),
    ] = "flushed",
    ncu: Annotated[
        bool, typer.Option("--ncu", help="add Nsight Compute counters (needs ncu on PATH)")
    ] = False,
    fib_trace: Annotated[
        Path | None,
        typer.Option("--fib-trace", help="append FlashInfer-Bench Trace rows (JSONL) to this file"),
    ] = None,
) -> None:
    """Correctness then profile of FILE on TASK.

    Exit code 0 when every workload passed, 1 when the candidate failed, 2 for unusable input (task, candidate
    file, option value; nothing is evaluated), 3 when the engine itself failed. With --json, stdout always holds
    one JSON document; an error gives {"status": "ERROR", "error": "..."}.
    """
    from ksearch_agent.engine import Engine

    if protocol not in get_args(TimingProtocol):
        _eval_error(f"--protocol must be 'flushed', 'hot' or 'gpumode', got {protocol!r}", as_json)
    if language not in (None, "triton", "cuda", "python"):
        _eval_error(f"--language must be triton, cuda or python, got {language!r}", as_json)
    try:
        t = load_task(task)
        from ksearch_agent.fib.solution import looks_like_solution

        if looks_like_solution(file):
            from ksearch_agent.fib.eval_input import candidate_from_solution

            cand, solution_name = candidate_from_solution(file, t)
        else:
            cand = Candidate.from_path(file, language=language)  # type: ignore[arg-type]
            solution_name = f"ksearch_{cand.id}"
        ids = _workload_ids(workloads, t.name, [w.id for w in t.workloads])
    except (TaskFileError, CandidateError, ValueError) as exc:
        _eval_error(str(exc), as_json)
    proto = cast(TimingProtocol, protocol)
    try:
        with Engine(device="cpu" if cpu else "auto") as engine:
            if not as_json:
                err_console.print(f"evaluating {escape(str(file))} on {t.name} ({engine.device_name})")
            report = engine.evaluate(t, cand, ids, trials=trials, protocol=proto, ncu=ncu)
    except TaskFileError as exc:  # the reference broke its own definition: the task is at fault, not FILE
        _eval_error(str(exc), as_json)
    except Exception as exc:  # noqa: BLE001 - an engine fault is not the candidate's verdict: exit 3, say why
        traceback.print_exc(file=sys.stderr)
        _eval_error(f"internal error: {type(exc).__name__}: {exc}", as_json, EXIT_INTERNAL)
    if fib_trace is not None:
        from ksearch_agent.fib.eval_input import write_fib_trace

        written = write_fib_trace(fib_trace, t, report, solution_name)
        err_console.print(f"{written} FIB trace rows appended to {escape(str(fib_trace))}")
    if as_json:
        sys.stdout.write(json.dumps(_json_doc(report), indent=1) + "\n")
    else:
        _print_report(report)
    raise typer.Exit(EXIT_PASSED if report.status == "PASSED" else EXIT_FAILED)


def _search_finished(final: dict[str, object]) -> None:
    from ksearch_agent.llm.caller import REFUSAL_NOTES
    from ksearch_agent.resources import store_for

    best = final.get("best") or {}
    console.print(f"status: {final.get('status')} · run directory: {final.get('run_dir')}")
    if final.get("run_dir"):
        for param in store_for(str(final["run_dir"])).get_meta("endpoint_refused") or []:
            console.print(f"endpoint: {REFUSAL_NOTES.get(param, param)}", markup=False, highlight=False)
        from ksearch_agent.llm.transcript import read_transcript, recoveries

        for line in recoveries(read_transcript(str(final["run_dir"]))):
            console.print(f"model: {line}", markup=False, highlight=False, soft_wrap=True)
        from ksearch_agent.backends.placement import mixed_gpu_note

        if note := mixed_gpu_note(store_for(str(final["run_dir"]))):
            console.print(f"[yellow]warning:[/yellow] {note}")
    if isinstance(best, dict) and best:
        speed = best.get("geomean_speedup")
        console.print(
            f"best candidate {best.get('candidate_id')} (action {best.get('node_id')}, round "
            f"{best.get('round')}): "
            + (
                f"{speed:.3f}x the reference"
                if isinstance(speed, float)
                else "passes; speed not measured on this machine"
            )
        )
        confirmation = best.get("confirmation") or {}
        for duel in confirmation.get("duels") or []:
            ratio = duel.get("ratio")
            console.print(
                f"  side by side: {duel['challenger']} vs {duel['champion']}: "
                + ("challenger not timed" if ratio is None else f"challenger {ratio:.3f}x as fast")
                + f" → {duel['winner']}"
            )
        if confirmation.get("error"):
            console.print(f"  {confirmation['error']}")
        console.print(f"sources: {best.get('files_dir')}")
    else:
        console.print("no passing candidate")
    unverified = final.get("unverified") or []
    if isinstance(unverified, list) and unverified:
        console.print(
            f"{len(unverified)} candidate(s) compiled, but correctness and speed were not measured: "
            "CUDA kernels need a GPU to run (search again on a GPU machine, or with --language triton)"
        )


def _write_report_after_run(run_dir: Path) -> None:
    """Write the run's HTML report and print its path; a failure is reported, never fatal (the run is done)."""
    from ksearch_agent.report import write_run_report

    try:
        console.print(f"report: {write_run_report(run_dir)}", soft_wrap=True, markup=False, highlight=False)
    except Exception as exc:  # noqa: BLE001 - the search's result matters more than its page
        err_console.print(
            f"[yellow]could not write the report:[/yellow] {type(exc).__name__}: {exc} "
            f"(try `ksearch report {run_dir}`)"
        )


EXIT_ENDPOINT = 3
"""``ksearch run``/``resume``: the LLM endpoint failed (unreachable, refused the key, unknown model, kept
answering 5xx/429); everything measured so far stays in the run, and ``ksearch resume RUN --base-url URL
--model NAME`` continues it, on another endpoint if need be."""


def _drive(task: str, start: Any, run_dir: Path, ctx: Any) -> None:
    """Run ``start(on_event)`` with progress on stderr (a live table on a terminal, else one JSON line per
    event), print the summary, write the report, exit 0 when a kernel passed, 1 when none did and 3 when the
    LLM endpoint failed."""
    from ksearch_agent.llm.endpoint import EndpointError, endpoint_error
    from ksearch_agent.llm.redact import redact, remember_key_in

    remember_key_in(ctx.api_key_env)
    try:
        if err_console.is_terminal:
            from rich.live import Live

            from ksearch_agent.live_view import LiveView

            view = LiveView(task)
            with Live(view.render(), console=err_console, refresh_per_second=4) as live:

                def on_event(ev: dict[str, object]) -> None:
                    view.on_event(ev)
                    live.update(view.render())

                final = start(on_event)
        else:
            from ksearch_agent.progress_log import ProgressLog

            final = start(ProgressLog(task).on_event)
    except Exception as exc:  # noqa: BLE001 - only endpoint failures are handled here; anything else re-raises
        failure = (
            exc
            if isinstance(exc, EndpointError)
            else endpoint_error(
                exc, base_url=ctx.base_url, model=ctx.model or "?", timeout_s=ctx.llm_timeout_s
            )
        )
        if failure is None:
            raise
        message = redact(str(failure))  # already redacted when made; printed text is checked once more
        err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
        err_console.print(
            f"everything measured so far is kept in {run_dir}; continue with: ksearch resume {run_dir} "
            "--base-url URL --model NAME",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_ENDPOINT) from None
    _search_finished(final)
    _write_report_after_run(run_dir)
    raise typer.Exit(0 if final.get("best") else 1)


@app.command("run")
def run_cmd(
    task: Annotated[str, typer.Argument(help="bundled task name or a task directory")],
    model: Annotated[str | None, typer.Option(help="chat model name (env KSEARCH_MODEL)")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (vLLM, SGLang, Ollama)")
    ] = None,
    api_key_env: Annotated[str, typer.Option(help="env var holding the API key")] = "OPENAI_API_KEY",
    policy: Annotated[
        str, typer.Option(help="llm | playbook | auto (llm when a model is configured)")
    ] = "auto",
    rounds: Annotated[int, typer.Option(min=1, help="search cycles")] = 5,
    language: Annotated[str, typer.Option(help="triton | cuda")] = "triton",
    budget_usd: Annotated[float | None, typer.Option(help="stop when the LLM cost passes this")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="stop when LLM tokens pass this")] = None,
    max_wall_s: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="attempts per action in one cycle (the coder's plus repairs)")
    ] = 5,
    stagnation_window: Annotated[
        int, typer.Option(min=1, help="end a cycle after this many attempts in a row without improvement")
    ] = 3,
    runs_root: Annotated[str, typer.Option(help="where run directories go")] = "runs",
    device: Annotated[str, typer.Option(help="auto | gpu | cpu")] = "auto",
    seed: Annotated[Path | None, typer.Option(help="a candidate .py to start root actions from")] = None,
    price_table: Annotated[
        Path | None, typer.Option(help='JSON {"model": [usd_per_1M_in, usd_per_1M_out]}')
    ] = None,
    json_mode: Annotated[
        bool, typer.Option(help="request JSON answers (response_format) for JSON steps")
    ] = True,
    seed_from_playbook: Annotated[
        bool,
        typer.Option("--seed-from-playbook", help="start an LLM run from the playbook's best seed kernel"),
    ] = False,
    confirm_top: Annotated[
        int,
        typer.Option(
            min=0,
            help="at the end, re-time this many top candidates side by side on the GPU to name the best (< 2: off)",
        ),
    ] = 3,
    temperature: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="sampling temperature (default: the server's; reasoning models take no other)"
        ),
    ] = None,
    max_output_tokens: Annotated[
        int | None, typer.Option(min=1, help="cap on the tokens of each model answer (default: the server's)")
    ] = None,
    reasoning_effort: Annotated[
        str | None, typer.Option(help="low | medium | high, for reasoning models (default: the server's)")
    ] = None,
    request_timeout: Annotated[
        float, typer.Option(min=1.0, help="seconds to wait for one model answer")
    ] = 600.0,
    llm_retries: Annotated[
        int, typer.Option(min=0, help="retries of a request that timed out, got 429 or 5xx (backing off)")
    ] = 5,
    max_tool_calls: Annotated[
        int, typer.Option(min=0, help="tool calls (or engine checks) per attempt, coder or repair")
    ] = 4,
    parallel: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="open actions worked at once, each its own coder/evaluate/repair cycle "
            "(default: one per GPU; 1 without a GPU)",
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help='where evaluations run: local (this machine\'s GPUs) | ray (pip install "ksearch-agent[ray]")'
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else a Ray on this machine)"),
    ] = None,
) -> None:
    """Search for a fast kernel for TASK; the run directory keeps everything (resume with `ksearch resume`)."""

    from ksearch_agent.context import SearchContext
    from ksearch_agent.runner import new_run_id, run_search

    for name, value, allowed in (
        ("--policy", policy, ("llm", "playbook", "auto")),
        ("--language", language, ("triton", "cuda")),
        ("--device", device, ("auto", "gpu", "cpu")),
        ("--reasoning-effort", reasoning_effort or "low", ("low", "medium", "high", "minimal")),
        ("--backend", backend, ("local", "ray")),
    ):
        if value not in allowed:
            raise typer.BadParameter(f"must be one of {', '.join(allowed)}", param_hint=name)
    try:
        t = load_task(task)
    except TaskFileError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    ctx = SearchContext(
        policy=cast(Literal["llm", "playbook"], "llm" if policy == "auto" else policy),
        max_rounds=rounds,
        language=cast(Literal["triton", "cuda"], language),
        budget_usd=budget_usd,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        max_wall_s=max_wall_s,
        max_attempts=max_attempts,
        stagnation_window=stagnation_window,
        runs_root=runs_root,
        device=cast(Literal["auto", "gpu", "cpu"], device),
        api_key_env=api_key_env,
        json_mode=json_mode,  # type: ignore[arg-type]
        price_table=str(price_table) if price_table else None,
        confirm_top=confirm_top,
        temperature=temperature,
        max_output_tokens=max_output_tokens,
        reasoning_effort=reasoning_effort,
        llm_timeout_s=request_timeout,
        llm_max_retries=llm_retries,
        max_tool_calls=max_tool_calls,
        parallel=parallel,
        backend=backend,  # type: ignore[arg-type]
        ray_address=ray_address,
    )
    if model:
        ctx.model = model
    if base_url:
        ctx.base_url = base_url
    if policy == "auto" and not ctx.model:
        ctx.policy = "playbook"
        err_console.print(
            "no model configured: using the playbook policy (deterministic, no LLM). "
            "Pass --model NAME [--base-url URL] to search with an LLM."
        )
    if ctx.policy == "llm" and not ctx.model:
        err_console.print(
            "[red]no model configured.[/red] Pass --model NAME (and --base-url URL for vLLM, SGLang or "
            "Ollama) or set KSEARCH_MODEL; or run without an LLM: --policy playbook."
        )
        raise typer.Exit(2)
    if ctx.policy == "llm" and (problem := _budget_problem(ctx)):
        err_console.print(f"[red]error:[/red] {escape(problem)}", soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    seed_code = None
    if seed_from_playbook:
        from ksearch_agent.playbook import playbook_seed_files

        try:
            seed_code = playbook_seed_files(t)
        except TaskFileError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    if seed is not None:
        seed_code = {
            p.name: p.read_text()
            for p in [seed] + [q for q in seed.parent.glob("*.cu") if q.name in seed.read_text()]
        }
    from ksearch_agent.backends import BackendUnavailable, settle_parallel

    try:
        ctx = settle_parallel(ctx)
    except BackendUnavailable as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    run_id = new_run_id(t.name)
    err_console.print(
        f"run {run_id} → {Path(runs_root) / run_id}  (policy {ctx.policy}"
        + (f", model {ctx.model}" if ctx.policy == "llm" else "")
        + (f", {ctx.parallel} cycles at once on the {ctx.backend} backend" if (ctx.parallel or 1) > 1 else "")
        + ")"
    )
    task_ref = t.name if t.directory.parent.name == "tasks" else str(t.directory)
    _drive(
        t.name,
        lambda on_event: run_search(task_ref, ctx, seed_code=seed_code, run_id=run_id, on_event=on_event),
        Path(runs_root).resolve() / run_id,
        ctx,
    )


def _budget_problem(ctx: Any) -> str | None:
    """Why the run's USD budget cannot be kept (a price table that does not load, or no price for the model)."""
    from ksearch_agent.llm.usage import PriceTable, budget_problem

    try:
        prices = PriceTable.from_file(ctx.price_table) if ctx.price_table else PriceTable()
    except (OSError, ValueError) as exc:
        return f"--price-table: {exc}"
    return budget_problem(ctx.model, ctx.budget_usd, prices)


@app.command("resume")
def resume_cmd(
    run: Annotated[str, typer.Argument(help="run directory or run id under runs/")],
    base_url: Annotated[
        str | None, typer.Option(help="continue on this OpenAI-compatible endpoint instead of the run's")
    ] = None,
    model: Annotated[str | None, typer.Option(help="continue with this model instead of the run's")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="env var holding the API key")] = None,
) -> None:
    """Continue an interrupted run from its last checkpoint; nothing evaluated is lost or redone. With
    --base-url/--model it continues on another endpoint (after an endpoint error, say)."""

    from ksearch_agent.backends import BackendUnavailable
    from ksearch_agent.runner import RunNotResumable, load_context, resolve_run_dir, resume_search

    overrides = {"base_url": base_url, "model": model, "api_key_env": api_key_env}
    try:
        run_dir = resolve_run_dir(run)
        ctx = load_context(run_dir, **overrides)
        if ctx.policy == "llm" and (problem := _budget_problem(ctx)):
            err_console.print(f"[red]error:[/red] {escape(problem)}", soft_wrap=True, highlight=False)
            raise typer.Exit(2)
        _drive(
            run_dir.name,
            lambda on_event: resume_search(run_dir, on_event=on_event, **overrides),
            run_dir,
            ctx,
        )
    except (FileNotFoundError, RunNotResumable, BackendUnavailable) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="run directory or run id under runs/")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    llm: Annotated[
        bool, typer.Option("--llm", help="print the run's LLM transcript (every request and answer) instead")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="with --llm: do not shorten long texts")] = False,
) -> None:
    """Status, policy, tokens and cost (per node), duels and lineage; the best kernel and its eval table,
    every candidate, and the world model as an indented outline. With --llm, the LLM transcript."""
    from ksearch_agent.report.summary import run_summary, show_document
    from ksearch_agent.report.text import summary_lines
    from ksearch_agent.resources import store_for
    from ksearch_agent.runner import resolve_run_dir
    from ksearch_agent.world_model import WorldModel

    try:
        run_dir = resolve_run_dir(run)
        if llm:
            _show_transcript(run_dir, as_json, full)
            return
        if as_json:
            sys.stdout.write(json.dumps(show_document(run_dir), indent=1) + "\n")
            return
        summary = run_summary(run_dir)
    except FileNotFoundError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    for line in summary_lines(summary):
        console.print(line, markup=False, highlight=False)
    store = store_for(run_dir)
    rows = store.candidates()
    table = Table(title=f"candidates of {run_dir.name} (task {store.get_meta('task')})")
    for col in ("id", "round", "action", "origin", "attempt", "status", "speedup"):
        table.add_column(col)
    for r in rows:
        sp = r["geomean_speedup"]
        table.add_row(
            r["id"],
            str(r["round"]),
            str(r["action_node"]),
            r["origin"],
            str(r["attempt"]),
            str(r["status"]),
            "—" if sp is None else f"{sp:.3f}x",
        )
    console.print(table)
    best = store.best_candidate()
    if best is not None:
        report = store.get_evaluation(best["id"])
        if report is not None:
            console.print(f"[bold]best kernel[/bold] {best['id']}: {run_dir / 'candidates' / best['id']}")
            _print_report(report)
            cand = store.load_candidate(best["id"])
            console.print(cand.files[cand.entry][:3000])
    else:
        console.print("no passing candidate yet")
    snaps = store.snapshots()
    if snaps:
        console.print(f"[bold]world model[/bold] ({snaps[-1]['note']}, round {snaps[-1]['round']}):")
        console.print(
            WorldModel.model_validate(snaps[-1]["world_model"]).outline(), markup=False, highlight=False
        )


def _show_transcript(run_dir: Path, as_json: bool, full: bool) -> None:
    from ksearch_agent.llm.transcript import TRANSCRIPT_FILE, format_transcript, read_transcript

    records = read_transcript(run_dir)
    if as_json:
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
        return
    if not records:
        console.print(f"no LLM exchanges recorded in {run_dir / TRANSCRIPT_FILE}", markup=False)
        return
    for line in format_transcript(records, full=full):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("runs")
def runs_cmd(
    directory: Annotated[Path, typer.Argument(help="a directory of runs (or one run directory)")] = Path(
        "runs"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Table of the run directories under DIRECTORY: task, policy, status, best speedup, candidates, date."""
    import dataclasses

    from ksearch_agent.report.summary import list_runs
    from ksearch_agent.report.text import RUNS_COLUMNS, runs_row

    if not directory.is_dir():
        err_console.print(f"[red]error:[/red] no directory {directory}")
        raise typer.Exit(2)
    summaries, problems = list_runs(directory)
    for problem in problems:
        err_console.print(f"[yellow]unreadable run:[/yellow] {problem}")
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(s) for s in summaries], indent=1) + "\n")
        return
    table = Table(title=f"runs in {directory}")
    for col in RUNS_COLUMNS:
        table.add_column(
            col,
            justify="right" if col in ("best", "candidates") else "left",
            no_wrap=col == "run",
            min_width=max((len(s.run_id) for s in summaries), default=3) if col == "run" else None,
        )
    for s in summaries:
        table.add_row(*runs_row(s))
    console.print(table)
    if not summaries:
        console.print(f"no run directories in {directory}")


@app.command("report")
def report_cmd(
    runs: Annotated[
        list[str], typer.Argument(help="run directory or run id under runs/ (several with --compare)")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="HTML file to write (default RUN/report.html; with --compare, ksearch-compare.html)"
        ),
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="overlay the best-speedup curves of several runs")
    ] = False,
) -> None:
    """Write a self-contained HTML page of a run: plots, the world-model tree per round, every attempt."""
    from ksearch_agent.report import write_compare_report, write_run_report
    from ksearch_agent.runner import resolve_run_dir

    if not compare and len(runs) != 1:
        raise typer.BadParameter("give one run, or several with --compare", param_hint="RUNS")
    try:
        dirs = [resolve_run_dir(r) for r in runs]
        path = (
            write_compare_report(dirs, out or Path("ksearch-compare.html"))
            if compare
            else write_run_report(dirs[0], out)
        )
    except FileNotFoundError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"report: {path}", soft_wrap=True, markup=False, highlight=False)


@app.command("export")
def export_cmd(
    run: Annotated[str, typer.Argument(help="run directory or run id under runs/")],
    out: Annotated[Path, typer.Argument(help="where to write the best kernel's entry file")],
    gpumode: Annotated[
        bool, typer.Option("--gpumode", help="require a GPUMode custom_kernel(data) entry point")
    ] = False,
    fib: Annotated[
        bool, typer.Option("--fib", help="write a FlashInfer-Bench Solution JSON to OUT instead")
    ] = False,
) -> None:
    """Write the run's best passing kernel (its entry file, plus any .cu files beside it) to OUT."""
    from ksearch_agent.resources import store_for
    from ksearch_agent.runner import resolve_run_dir

    try:
        run_dir = resolve_run_dir(run)
    except FileNotFoundError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    store = store_for(run_dir)
    best = store.best_candidate()
    if best is None:
        err_console.print("[red]error:[/red] this run has no passing candidate to export")
        raise typer.Exit(1)
    cand = store.load_candidate(best["id"])
    if fib:
        from ksearch_agent.fib.solution import from_candidate

        try:
            solution = from_candidate(
                cand,
                str(store.get_meta("task") or "unknown"),
                name=f"ksearch_{cand.id}",
                description=f"best passing kernel of ksearch run {run_dir.name}",
            )
        except CandidateError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(solution.model_dump_json(indent=1, exclude_none=True) + "\n")
        console.print(f"exported candidate {best['id']} as FIB solution {solution.name} to {out}")
        return
    source = cand.files[cand.entry]
    if gpumode and "def custom_kernel(" not in source:
        err_console.print(
            "[red]error:[/red] the best kernel has no custom_kernel(data) entry point; GPUMode "
            "submissions need one (the task must have a GPUMode adapter)"
        )
        raise typer.Exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(source)
    for name, text in cand.files.items():
        if name != cand.entry:
            (out.parent / name).write_text(text)
    speed = best["geomean_speedup"]
    console.print(f"exported candidate {best['id']} ({'—' if speed is None else f'{speed:.3f}x'}) to {out}")


if __name__ == "__main__":
    app()
