"""The report pages as one self-contained HTML string each: inline CSS, inline SVG charts, one small inline
script (the tree's snapshot slider) and nothing fetched from anywhere, so the file opens offline.

Only rendering lives here; every figure comes from :mod:`ksearch_agent.report.plots`, the tree markup from
:mod:`ksearch_agent.report.tree_html` and the data from :mod:`ksearch_agent.report.run_report`.  All text
from the run (decisions, logs, transcripts, sources) goes through :func:`html.escape`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from html import escape

from ksearch_agent.report.history import AttemptRecord, RoundUsage
from ksearch_agent.report.plots import (
    STATUS_COLOURS,
    ProgressSeries,
    progress_svg,
    timeline_svg,
    usage_svg,
    workloads_svg,
)
from ksearch_agent.report.run_report import RunReport
from ksearch_agent.report.summary import RunSummary
from ksearch_agent.report.tree_html import frames_html
from ksearch_agent.report.workloads import WorkloadRow

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1240px;padding:0 18px 40px;
color:#212121}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f5f5f5}td>b{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
svg{max-width:100%;height:auto}figure{margin:8px 0}.note{color:#555}.problem{color:#b71c1c}
.status{font-weight:600}.status.finished{color:#2e7d32}.status.error{color:#c62828}.status.incomplete{color:#ef6c00}
pre{background:#fafafa;border:1px solid #eee;padding:8px;overflow:auto;max-height:480px;font-size:12px}
details summary{cursor:pointer;color:#1565c0}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:22px}ul.tree{padding-left:0}
ul.tree li{position:relative;padding:4px 0 4px 16px}
ul.tree li::before{content:"";position:absolute;left:0;top:20px;width:14px;border-top:1px solid #9e9e9e}
ul.tree li::after{content:"";position:absolute;left:0;top:0;bottom:0;border-left:1px solid #9e9e9e}
ul.tree li:last-child::after{bottom:auto;height:20px}
ul.tree>li::before,ul.tree>li::after{display:none}
.node{display:inline-block;border:1px solid #9e9e9e;border-radius:6px;padding:3px 8px;background:#fafafa;
max-width:720px;font-size:12.5px}
.node.family{border-width:2px}.node.refinement{border-style:dashed}
.node.solved{background:#e8f5e9;border-color:#2e7d32}.node.open{background:#e3f2fd;border-color:#1565c0}
.node.failed{background:#ffebee;border-color:#c62828}.node.plain{background:#f5f5f5}.node.root{background:#fff}
.node.best-path{outline:3px solid #ff9800}
.node .badge{font-size:11px;color:#555;border:1px solid #ccc;border-radius:8px;padding:0 5px}
.node .decision{font-weight:600}.node .figs,.node .action,.node .solution{color:#424242}
.legend .node{padding:0 6px}.slider{margin:6px 0}.slider input{width:320px;vertical-align:middle}
"""

SCRIPT = """
(function () {
  var slider = document.getElementById("round-slider");
  if (!slider) { return; }
  var frames = document.querySelectorAll(".tree-frame");
  var label = document.getElementById("round-label");
  function show(i) {
    for (var j = 0; j < frames.length; j++) { frames[j].hidden = (j !== i); }
    label.textContent = frames[i].getAttribute("data-label");
  }
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  show(parseInt(slider.value, 10));
})();
"""


def _num(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{format(value, spec)}{suffix}"


def _when(t: float | None) -> str:
    return "—" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int] | None = None) -> str:
    """A table of already-escaped cells; columns in ``numeric`` are right-aligned."""
    numeric = numeric or set()
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    thead = f"<thead><tr>{th}</tr></thead>" if any(head) else ""
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _status(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#424242")
    return f'<span style="color:{colour};font-weight:600">{escape(status)}</span>'


def _figure(svg: str, name: str) -> str:
    return f'<figure class="plot" id="plot-{name}">{svg}</figure>'


def summary_html(s: RunSummary) -> str:
    """The run's header: what, how, how it ended, its best kernel and what it cost."""
    best = s.best
    best_text = (
        "none passed"
        if best is None
        else (
            f"<code>{escape(best.candidate_id)}</code> (action {escape(str(best.action_id))}, round {best.round}): "
            + (
                f"{best.speedup:.3f}x the reference ({escape(best.protocol or '')} protocol)"
                if best.speedup is not None
                else "passes; speed not measured"
            )
        )
    )
    usage = s.usage
    cost = usage.cost_label
    rows = [
        ("run", f"<code>{escape(s.run_id)}</code> · {escape(s.run_dir)}"),
        ("task", escape(str(s.task))),
        (
            "status",
            f'<span class="status {escape(s.status)}">{escape(s.status)}</span>'
            + (f" — {escape(s.stop_reason)}" if s.stop_reason else ""),
        ),
        ("policy / model", escape(f"{s.policy} / {s.model or '—'}")),
        ("language / device", escape(f"{s.language} / {s.device}")),
        ("time", f"{_when(s.started)} → {_when(s.ended)}"),
        (
            "rounds / candidates",
            f"{s.rounds} rounds · {s.candidates} candidates, {s.evaluated} evaluated, {s.passed} passed",
        ),
        ("best kernel", best_text),
        (
            "LLM usage",
            f"{usage.calls} calls · {usage.input_tokens:,} input + {usage.output_tokens:,} output "
            f"tokens · {cost}",
        ),
    ]
    return _table(("", ""), [(f"<b>{escape(k)}</b>", v) for k, v in rows])


def confirmation_html(s: RunSummary) -> str:
    """The side-by-side duels that named the best kernel, and its lineage in the world model."""
    parts = []
    if s.duels:
        parts.append(
            _table(
                ("challenger", "champion", "challenger as fast as", "winner", "protocol", "device"),
                [
                    (
                        f"<code>{escape(str(d.get('challenger')))}</code>",
                        f"<code>{escape(str(d.get('champion')))}</code>",
                        _num(d.get("ratio"), ".3f", "x") if d.get("ratio") is not None else "not timed",
                        f"<code>{escape(str(d.get('winner')))}</code>",
                        escape(str(d.get("protocol") or "")),
                        escape(str(d.get("device") or "")),
                    )
                    for d in s.duels
                ],
                numeric={2},
            )
        )
    else:
        parts.append(
            '<p class="note">No side-by-side duels: '
            + (
                "fewer than two contenders close to the best, or no GPU to time them on."
                if s.best
                else "no passing candidate."
            )
            + "</p>"
        )
    if s.confirmation_error:
        parts.append(f'<p class="problem">{escape(s.confirmation_error)}</p>')
    if s.lineage:
        steps = " → ".join(
            f"<b>{escape(n['id'])}</b> {escape(n['decision'])}"
            + (
                f" (<code>{escape(str(n['candidate_id']))}</code>, "
                f"{_num(n.get('geomean_speedup'), '.3f', 'x')})"
                if n.get("candidate_id")
                else ""
            )
            for n in s.lineage
        )
        parts.append(f"<p>Lineage of the best kernel: {steps}</p>")
    return "".join(parts)


def workloads_table(rows: Sequence[WorkloadRow]) -> str:
    """Correctness and timing per workload of the best kernel (a baseline column only where one was timed)."""
    others = sorted({k for r in rows for k in r.opponents_ms})
    baseline = any(r.baseline_ms is not None for r in rows)
    head = [
        "workload",
        "status",
        "max abs err",
        "max rel err",
        "latency ms",
        "reference ms",
        *(["baseline ms"] if baseline else []),
        *[f"{o} ms" for o in others],
        "speedup",
        "% roofline",
    ]
    body = [
        [
            escape(r.workload),
            _status(r.status),
            _num(r.max_abs_error, ".2e"),
            _num(r.max_rel_error, ".2e"),
            _num(r.latency_ms, ".4f"),
            _num(r.reference_ms, ".4f"),
            *([_num(r.baseline_ms, ".4f")] if baseline else []),
            *[_num(r.opponents_ms.get(o), ".4f") for o in others],
            _num(r.speedup, ".2f", "x"),
            _num(100 * r.roofline_fraction if r.roofline_fraction is not None else None, ".1f"),
        ]
        for r in rows
    ]
    return _table(head, body, numeric=set(range(2, len(head))))


def attempts_table(records: Sequence[AttemptRecord]) -> str:
    """Every attempt with origin, status and speedup, and its failure log and coder transcript excerpts."""
    if not records:
        return ""
    body = []
    for r in records:
        extra = []
        if r.log:
            extra.append(f"<details><summary>log</summary><pre>{escape(r.log)}</pre></details>")
        if r.transcript:
            extra.append(
                f"<details><summary>coder transcript</summary><pre>{escape(r.transcript)}</pre></details>"
            )
        body.append(
            [
                str(r.index),
                str(r.round),
                escape(f"{r.action_id or '—'}: {r.action_title}".rstrip(": ")),
                escape(f"{r.origin} #{r.attempt}" if r.origin != "seed" else "seed"),
                f"<code>{escape(r.candidate_id)}</code>" if r.candidate_id else "— (no code)",
                _status(r.status),
                _num(r.speedup, ".3f", "x"),
                escape(r.checked or ""),
                "".join(extra),
            ]
        )
    return _table(
        ("#", "round", "action", "origin", "candidate", "status", "speedup", "checked", "details"),
        body,
        numeric={0, 1, 6},
    )


def usage_tables(rounds: Sequence[RoundUsage], by_node: dict[str, dict[str, float]]) -> str:
    """Tokens and cost per round and per node, as numbers beside the chart."""
    if not any(r.calls for r in rounds) and not by_node:
        return ""
    per_round = _table(
        ("round", "calls", "input tokens", "output tokens", "USD"),
        [
            (str(r.round), str(r.calls), f"{r.input_tokens:,}", f"{r.output_tokens:,}", f"{r.cost_usd:.4f}")
            for r in rounds
        ],
        numeric={0, 1, 2, 3, 4},
    )
    per_node = _table(
        ("node", "calls", "input tokens", "output tokens", "USD", "unpriced calls"),
        [
            (
                escape(n),
                str(int(v.get("calls") or 0)),
                f"{int(v.get('input_tokens') or 0):,}",
                f"{int(v.get('output_tokens') or 0):,}",
                _num(v.get("cost_usd"), ".4f"),
                str(int(v.get("unpriced_calls") or 0)),
            )
            for n, v in sorted(by_node.items())
        ],
        numeric={1, 2, 3, 4, 5},
    )
    return per_round + per_node


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}"
        f'<p class="note">written by <code>ksearch report</code> on {_when(time.time())}</p>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def render_run_page(r: RunReport) -> str:
    """The report of one run."""
    s = r.summary
    sections = [f"<h1>ksearch run {escape(s.run_id)}</h1>", summary_html(s)]
    sections += [f'<p class="problem">{escape(p)}</p>' for p in r.problems]
    sections += [
        "<h2>Best speedup over the run</h2>",
        _figure(progress_svg([ProgressSeries("", r.curves, s.rounds, s.evaluated)]), "progress"),
        "<h2>Best kernel per workload</h2>",
        _figure(
            workloads_svg(
                r.workloads,
                empty="no candidate passed"
                if s.best is None
                else "no workload was timed (no GPU, or the best kernel was not profiled)",
            ),
            "workloads",
        ),
    ]
    if r.best_note:
        sections.append(f'<p class="note">{escape(r.best_note)}</p>')
    if r.workloads:
        sections.append(workloads_table(r.workloads))
    sections += ["<h2>Confirmation and lineage</h2>", confirmation_html(s), "<h2>World model</h2>"]
    if r.kernel_summary:
        sections.append(f"<p>{escape(r.kernel_summary)}</p>")
    if r.open_questions:
        sections.append("<ul>" + "".join(f"<li>{escape(q)}</li>" for q in r.open_questions) + "</ul>")
    sections += [
        f'<div id="world-model">{frames_html(r.frames)}</div>',
        "<h2>Attempts</h2>",
        _figure(timeline_svg(r.attempts), "timeline"),
        attempts_table(r.attempts),
        "<h2>LLM usage</h2>",
        _figure(usage_svg(r.usage_rounds, s.usage.by_node), "usage"),
        usage_tables(r.usage_rounds, s.usage.by_node),
    ]
    if r.best_source is not None and s.best is not None:
        sections.append(
            f"<h2>Best kernel source</h2><details><summary>{escape(s.best.files_dir)}</summary>"
            f"<pre>{escape(r.best_source)}</pre></details>"
        )
    return _page(f"ksearch report · {s.run_id}", "".join(sections))


def runs_table(summaries: Sequence[RunSummary]) -> str:
    """One row per run: task, policy and model, status, best speedup, candidates, tokens, cost, date."""
    return _table(
        ("run", "task", "policy / model", "status", "best speedup", "candidates", "tokens", "USD", "started"),
        [
            (
                f"<code>{escape(s.run_id)}</code>",
                escape(str(s.task)),
                escape(f"{s.policy} / {s.model or '—'}"),
                f'<span class="status {escape(s.status)}">{escape(s.status)}</span>'
                + (f" ({escape(s.stop_reason)})" if s.stop_reason else ""),
                _num(s.best.speedup if s.best else None, ".3f", "x"),
                str(s.candidates),
                f"{s.usage.total_tokens:,}",
                f"{s.usage.cost_usd:.4f}",
                _when(s.started),
            )
            for s in summaries
        ],
        numeric={4, 5, 6, 7},
    )


def render_compare_page(reports: Sequence[RunReport]) -> str:
    """Several runs side by side: their summaries and their best-speedup curves overlaid."""
    series = [
        ProgressSeries(
            f"{r.summary.run_id} ({r.summary.policy}" + (f", {r.summary.model})" if r.summary.model else ")"),
            r.curves,
            r.summary.rounds,
            r.summary.evaluated,
        )
        for r in reports
    ]
    body = [
        "<h1>ksearch: comparing runs</h1>",
        runs_table([r.summary for r in reports]),
        "<h2>Best speedup</h2>",
        _figure(progress_svg(series, name="compare"), "compare"),
    ]
    unmeasured = [r.summary.run_id for r in reports if not any(r.curves.values())]
    if unmeasured:
        body.append(
            f'<p class="note">Without a measured speedup (not drawn): {escape(", ".join(unmeasured))}</p>'
        )
    return _page("ksearch report · comparison", "".join(body))
