"""``ksearch`` command line: list tasks and evaluate a candidate kernel."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from ksearch_agent.candidate import Candidate, CandidateError
from ksearch_agent.log import configure_logging
from ksearch_agent.results import EvalReport
from ksearch_agent.task import TaskFileError, list_task_names, load_task

app = typer.Typer(add_completion=False, no_args_is_help=True, help="K-Search: GPU kernel search with a world model.")
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _main(log_level: Annotated[str, typer.Option(help="structlog level for progress records")] = "WARNING") -> None:
    configure_logging(log_level)


@app.command("tasks")
def tasks_cmd() -> None:
    """Table of bundled tasks, their axes and workload counts."""
    table = Table(title="ksearch tasks")
    for col in ("task", "op_type", "axes", "workloads", "cpu subset", "benchmarks", "seeds"):
        table.add_column(col)
    for name in list_task_names():
        try:
            t = load_task(name)
        except TaskFileError as exc:
            table.add_row(name, "[red]invalid[/red]", str(exc), "", "", "", "")
            continue
        axes = ", ".join(f"{n}={a.value}" if a.type == "const" else f"{n} (var)" for n, a in t.definition.axes.items())
        table.add_row(name, t.definition.op_type, axes, str(len(t.workloads)), str(len(t.select(cpu=True))),
                      str(len(t.select(role="benchmark"))), ", ".join(p.name for p in t.seeds))
    console.print(table)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _print_report(report: EvalReport) -> None:
    corr, prof = report.correctness, report.profile
    timing = {w.workload: w for w in (prof.workloads if prof else [])}
    table = Table(title=f"{report.task} · candidate {report.candidate_id} ({report.language}) · {corr.device}")
    for col in ("workload", "status", "max abs err", "max rel err", "latency ms", "ref ms", "speedup", "% roofline"):
        table.add_column(col, justify="right" if col not in ("workload", "status") else "left")
    for w in corr.workloads:
        t = timing.get(w.workload)
        colour = "green" if w.status == "PASSED" else "red"
        table.add_row(w.workload, f"[{colour}]{w.status}[/{colour}]", _fmt(w.max_abs_error, ".2e"),
                      _fmt(w.max_rel_error, ".2e"), _fmt(t.latency_ms if t else None, ".4f"),
                      _fmt(t.reference_latency_ms if t else None, ".4f"), _fmt(t.speedup if t else None, ".2f"),
                      _fmt(100 * t.roofline_fraction if t and t.roofline_fraction else None, ".1f"))
    console.print(table)
    for w in corr.workloads:
        if w.status != "PASSED" and w.log:
            err_console.print(f"[bold]{w.workload}[/bold]: {w.log.strip()[-1500:]}")
    if corr.note:
        console.print(f"[dim]{corr.note}[/dim]")
    if prof is not None:
        if prof.measured:
            console.print(f"geomean latency {_fmt(prof.geomean_latency_ms, '.4f')} ms · reference "
                          f"{_fmt(prof.geomean_reference_ms, '.4f')} ms · speedup {_fmt(prof.geomean_speedup, '.2f')}x "
                          f"({prof.protocol} protocol, {prof.device})")
        if prof.note:
            console.print(f"[yellow]{prof.note}[/yellow]")
        if prof.counters:
            for k in prof.counters.get("kernels", []):
                console.print(f"ncu {k.get('kernel', '?')[:48]}: DRAM {k.get('dram_throughput_pct')}% · SM "
                              f"{k.get('sm_throughput_pct')}% · occupancy {k.get('achieved_occupancy_pct')}%")
            if prof.counters.get("note"):
                console.print(f"[yellow]{prof.counters['note']}[/yellow]")
    colour = "green" if report.status == "PASSED" else "red"
    console.print(f"status: [{colour}]{report.status}[/{colour}]  ({report.seconds:.1f}s)")


def _json_doc(report: EvalReport) -> dict[str, object]:
    timing = {w.workload: w for w in (report.profile.workloads if report.profile else [])}
    rows = []
    for w in report.correctness.workloads:
        t = timing.get(w.workload)
        rows.append({"id": w.workload, "status": w.status if not t or t.status == "PASSED" else t.status,
                     "max_abs_error": w.max_abs_error, "max_rel_error": w.max_rel_error,
                     "latency_ms": t.latency_ms if t else None,
                     "reference_latency_ms": t.reference_latency_ms if t else None,
                     "speedup": t.speedup if t else None,
                     "roofline_fraction": t.roofline_fraction if t else None, "log": w.log or (t.log if t else "")})
    prof = report.profile
    return {"task": report.task, "candidate_id": report.candidate_id, "language": report.language,
            "status": report.status, "checked": report.correctness.checked, "device": report.correctness.device,
            "note": report.correctness.note, "speed_measured": bool(prof and prof.measured),
            "geomean_speedup": prof.geomean_speedup if prof else None,
            "geomean_latency_ms": prof.geomean_latency_ms if prof else None,
            "geomean_reference_ms": prof.geomean_reference_ms if prof else None,
            "workloads": rows, "counters": prof.counters if prof else None, "seconds": report.seconds}


@app.command("eval")
def eval_cmd(
    task: Annotated[str, typer.Argument(help="bundled task name or a task directory")],
    file: Annotated[Path, typer.Argument(help="candidate .py (run(...) or GPUMode custom_kernel(data))")],
    workloads: Annotated[str | None, typer.Option(help="comma-separated workload ids (default: all)")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="force the CPU (Triton interpreter, CPU workloads)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    trials: Annotated[int, typer.Option(min=1, help="correctness trials per workload")] = 2,
    language: Annotated[str | None, typer.Option(help="triton|cuda|python (default: detected)")] = None,
    protocol: Annotated[str, typer.Option(help="flushed|gpumode timing protocol")] = "flushed",
    ncu: Annotated[bool, typer.Option("--ncu", help="add Nsight Compute counters (needs ncu on PATH)")] = False,
) -> None:
    """Correctness then profile of FILE on TASK; exit code 0 only when every workload passed."""
    from ksearch_agent.engine import Engine

    if protocol not in ("flushed", "gpumode"):
        raise typer.BadParameter("must be 'flushed' or 'gpumode'", param_hint="--protocol")
    if language not in (None, "triton", "cuda", "python"):
        raise typer.BadParameter("must be triton, cuda or python", param_hint="--language")
    try:
        t = load_task(task)
        cand = Candidate.from_path(file, language=language)  # type: ignore[arg-type]
        ids = [w.strip() for w in workloads.split(",") if w.strip()] if workloads else None
        if ids:
            t.select(ids)
    except (TaskFileError, CandidateError, KeyError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    proto: Literal["flushed", "gpumode"] = "gpumode" if protocol == "gpumode" else "flushed"
    with Engine(device="cpu" if cpu else "auto") as engine:
        if not as_json:
            err_console.print(f"evaluating {file} on {t.name} ({engine.device_name})")
        report = engine.evaluate(t, cand, ids, trials=trials, protocol=proto, ncu=ncu)
    if as_json:
        sys.stdout.write(json.dumps(_json_doc(report), indent=1) + "\n")
    else:
        _print_report(report)
    raise typer.Exit(0 if report.status == "PASSED" else 1)


if __name__ == "__main__":
    app()
