"""The report's charts, drawn by matplotlib's SVG backend and returned as SVG text to inline in the page.

Figures are made with the object API (``matplotlib.figure.Figure``), so no global pyplot state or backend
switch is involved and a report can be written from any thread.  Text stays text (``svg.fonttype: none``)
so the page is small and searchable, and every id inside a figure is prefixed with the figure's name,
because several SVGs inlined in one HTML page share one id namespace.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ksearch_agent.report.history import AttemptRecord, CurvePoint, RoundUsage, best_by_round
from ksearch_agent.report.workloads import WorkloadRow

STATUS_COLOURS: dict[str, str] = {
    "PASSED": "#2e7d32",
    "UNVERIFIED": "#607d8b",
    "INCORRECT_NUMERICAL": "#ef6c00",
    "INCORRECT_DTYPE": "#f57c00",
    "INCORRECT_SHAPE": "#fb8c00",
    "RUNTIME_ERROR": "#c62828",
    "TIMEOUT": "#6a1b9a",
    "COMPILE_ERROR": "#d81b60",
    "REJECTED": "#212121",
    "NOT_EVALUATED": "#9e9e9e",
    "REPEAT": "#b0bec5",
}
ORIGIN_MARKERS: dict[str, str] = {"seed": "s", "coder": "o", "repair": "^"}
BAR_COLOURS: dict[str, str] = {"reference": "#9e9e9e", "baseline": "#ffb74d", "best kernel": "#1565c0"}
_OTHER_COLOURS = ("#8d6e63", "#4db6ac", "#ba68c8", "#aed581")

_P = ParamSpec("_P")
_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'href="#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")


@dataclass(frozen=True)
class ProgressSeries:
    """One run's best-so-far curves (per timing protocol), its numbers of rounds and of evaluations (where
    the curves end), under a label."""

    label: str
    curves: dict[str, list[CurvePoint]]
    rounds: int
    evaluations: int = 0


def _plain_text(draw: Callable[_P, str]) -> Callable[_P, str]:
    """Draw with text kept as SVG text and never read as mathtext: run ids, workload names and costs may
    hold ``$`` or ``_`` and must come out exactly as written."""

    @functools.wraps(draw)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> str:
        with matplotlib.rc_context({"svg.fonttype": "none", "text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog or DOCTYPE, no metadata, ids prefixed."""
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
    )
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = _ID.sub(lambda m: f'id="{name}-{m.group(1)}"', text)
    text = _HREF.sub(lambda m: f'href="#{name}-{m.group(1)}"', text)
    return _URL.sub(lambda m: f"url(#{name}-{m.group(1)})", text)


@_plain_text
def _message(name: str, title: str, message: str) -> str:
    """A small figure that says why there is nothing to plot (rather than leaving a gap in the page)."""
    fig = Figure(figsize=(8, 0.6))
    fig.text(0.0, 0.75, title, fontsize=11, va="center")
    fig.text(0.0, 0.25, message, fontsize=10, color="#555555", va="center")
    return to_svg(fig, name)


@_plain_text
def progress_svg(series: Sequence[ProgressSeries], name: str = "progress") -> str:
    """Best speedup so far against round and against number of evaluations, one line per run and protocol."""
    lines = [(s, proto, pts) for s in series for proto, pts in sorted(s.curves.items()) if pts]
    title = "best speedup over the reference"
    if not lines:
        return _message(
            name, title, "no passing candidate with a measured speed (speed is measured on a GPU only)"
        )
    fig = Figure(figsize=(11, 3.8))
    by_round, by_eval = fig.subplots(1, 2)
    for s, proto, pts in lines:
        label = f"{s.label} · {proto}" if s.label else proto
        steps = [(r, v) for r, v in best_by_round(pts, s.rounds) if v is not None]
        (line,) = by_round.plot(
            [r for r, _ in steps],
            [v for _, v in steps],
            drawstyle="steps-post",
            marker="o",
            markersize=3,
            label=label,
        )
        evals, bests = [p.evaluation for p in pts], [p.best for p in pts]
        if s.evaluations > evals[-1]:
            evals, bests = [*evals, s.evaluations], [*bests, bests[-1]]
        by_eval.plot(
            evals,
            bests,
            drawstyle="steps-post",
            marker="o",
            markersize=3,
            markevery=len(pts) * [True] + (len(evals) - len(pts)) * [False],
            color=line.get_color(),
            label=label,
        )
    for ax, xlabel in ((by_round, "round"), (by_eval, "evaluations")):
        ax.axhline(1.0, color="#999999", linewidth=0.8, linestyle=":")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("best speedup (x reference)")
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_round.set_title(f"{title}, by round", loc="left", fontsize=11)
    by_eval.set_title("… and by number of evaluations", loc="left", fontsize=11)
    by_eval.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return to_svg(fig, name)


@_plain_text
def workloads_svg(
    rows: Sequence[WorkloadRow],
    name: str = "workloads",
    empty: str = "no workload was timed (no GPU, or the best kernel was not profiled)",
) -> str:
    """Per workload, the best kernel's latency beside the reference's (and the baseline's or any other
    opponent's the profile measured), on a log scale, each labelled with its speedup and roofline share."""
    timed = [r for r in rows if r.latency_ms is not None]
    title = "best kernel per workload"
    if not timed:
        return _message(name, title, empty)
    opponents: list[tuple[str, list[float | None]]] = [("reference", [r.reference_ms for r in timed])]
    if any(r.baseline_ms is not None for r in timed):
        opponents.append(("baseline", [r.baseline_ms for r in timed]))
    for other in sorted({k for r in timed for k in r.opponents_ms}):
        opponents.append((other, [r.opponents_ms.get(other) for r in timed]))
    groups = [*opponents, ("best kernel", [r.latency_ms for r in timed])]
    height = 0.8 / len(groups)
    fig = Figure(figsize=(11, 1.2 + 0.25 * len(timed) * len(groups)))
    ax = fig.add_subplot()
    for k, (label, values) in enumerate(groups):
        ys = [i + (k - (len(groups) - 1) / 2) * height for i in range(len(timed))]
        ax.barh(
            ys,
            [v if v is not None else math.nan for v in values],
            height=height * 0.9,
            label=label,
            color=BAR_COLOURS.get(label, _OTHER_COLOURS[k % len(_OTHER_COLOURS)]),
        )
    ax.set_xscale("log")
    for i, r in enumerate(timed):
        parts = [
            f"{r.speedup:.2f}x" if r.speedup is not None else "",
            f"{100 * r.roofline_fraction:.0f}% of roofline" if r.roofline_fraction is not None else "",
        ]
        ax.annotate(
            "  " + " · ".join(p for p in parts if p),
            (r.latency_ms or 0.0, i + (len(groups) - 1) / 2 * height),
            fontsize=8,
            va="center",
            color="#0d47a1",
        )
    ax.set_yticks(range(len(timed)), [r.workload for r in timed], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return to_svg(fig, name)


@_plain_text
def timeline_svg(records: Sequence[AttemptRecord], name: str = "timeline") -> str:
    """Every attempt in order, marker by origin (seed, coder, repair) and colour by status, round
    boundaries marked.  With measured speeds the y axis is the speedup (attempts without one sit on the
    bottom line); without any (a CPU run) each status gets its own row."""
    title = "attempts"
    if not records:
        return _message(name, title, "no attempt was made")
    speeds = [r.speedup for r in records if r.speedup is not None and r.status == "PASSED"]
    statuses = [st for st in STATUS_COLOURS if any(r.status == st for r in records)]
    statuses += sorted({r.status for r in records} - set(statuses))

    def y_of(r: AttemptRecord) -> float:
        if not speeds:
            return float(statuses.index(r.status))
        return r.speedup if r.speedup is not None and r.status == "PASSED" else min(0.0, *speeds)

    fig = Figure(figsize=(11, 1.6 + (0.35 * len(statuses) if not speeds else 1.8)))
    ax = fig.add_subplot()
    for origin in sorted({r.origin for r in records}):
        for status in statuses:
            pts = [r for r in records if r.origin == origin and r.status == status]
            if pts:
                ax.scatter(
                    [r.index for r in pts],
                    [y_of(r) for r in pts],
                    marker=ORIGIN_MARKERS.get(origin, "D"),
                    color=STATUS_COLOURS.get(status, "#424242"),
                    s=40,
                    zorder=3,
                    label=f"{origin} · {status}",
                    edgecolors="white",
                    linewidths=0.5,
                )
    previous = None
    for r in records:
        if r.round != previous:
            ax.axvline(r.index - 0.5, color="#cccccc", linewidth=0.8, zorder=1)
            ax.annotate(
                f"r{r.round}",
                (r.index - 0.45, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                va="top",
                color="#777777",
            )
            previous = r.round
    if speeds:
        ax.set_ylabel("speedup (x reference)")
        ax.grid(True, axis="y", alpha=0.3)
    else:
        ax.set_yticks(range(len(statuses)), statuses, fontsize=8)
        ax.set_ylim(-0.7, len(statuses) - 0.3)
    ax.set_xlim(0.4, len(records) + 0.6)
    ax.margins(y=0.12)
    ax.set_xlabel("attempt")
    ax.set_title(
        f"{title}: origin and status of each (round boundaries marked r1, r2, …)", loc="left", fontsize=11
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return to_svg(fig, name)


@_plain_text
def usage_svg(rounds: Sequence[RoundUsage], by_node: dict[str, dict[str, float]], name: str = "usage") -> str:
    """Tokens (input and output) and USD per round, and tokens per graph node."""
    title = "LLM tokens and cost"
    if not any(r.calls for r in rounds) and not any(v.get("calls") for v in by_node.values()):
        return _message(
            name, title, "no LLM call was made (playbook policy, or the run stopped before its first call)"
        )
    fig = Figure(figsize=(11, 3.6))
    per_round, per_node = fig.subplots(1, 2)
    xs = [r.round for r in rounds]
    per_round.bar(xs, [r.input_tokens for r in rounds], label="input tokens", color="#90caf9")
    per_round.bar(
        xs,
        [r.output_tokens for r in rounds],
        bottom=[r.input_tokens for r in rounds],
        label="output tokens",
        color="#1565c0",
    )
    per_round.set_xlabel("round")
    per_round.set_ylabel("tokens")
    per_round.set_title(f"{title} per round", loc="left", fontsize=11)
    per_round.xaxis.set_major_locator(MaxNLocator(integer=True))
    cost = per_round.twinx()
    cost.plot(xs, [r.cost_usd for r in rounds], color="#c62828", marker="o", markersize=3, label="USD")
    cost.set_ylabel("USD", color="#c62828")
    cost.set_ylim(bottom=0.0)
    handles = per_round.get_legend_handles_labels()
    extra = cost.get_legend_handles_labels()
    per_round.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=8, loc="upper left")
    nodes = sorted(by_node)
    inputs = [float(by_node[n].get("input_tokens") or 0) for n in nodes]
    outputs = [float(by_node[n].get("output_tokens") or 0) for n in nodes]
    per_node.barh(nodes, inputs, color="#90caf9", label="input tokens")
    per_node.barh(nodes, outputs, left=inputs, color="#1565c0", label="output tokens")
    for i, n in enumerate(nodes):
        usd = by_node[n].get("cost_usd")
        per_node.annotate(
            f"  {int(by_node[n].get('calls') or 0)} calls" + (f" · ${usd:.4f}" if usd is not None else ""),
            (inputs[i] + outputs[i], i),
            va="center",
            fontsize=8,
        )
    per_node.set_xlabel("tokens")
    per_node.margins(x=0.3)
    per_node.set_title("per graph node", loc="left", fontsize=11)
    per_node.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return to_svg(fig, name)
