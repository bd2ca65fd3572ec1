"""Chat intake and answers for ``kernel_chat``: plain rules, testable without a graph.

A request names a bundled task when its words match one and nothing it says contradicts the task's fixed
sizes ("rmsnorm for hidden 2048" is not the bundled 4096 one). Follow-ups in the same thread ("try CUDA
instead", "10 more rounds") refer to the thread's last run.
"""

from __future__ import annotations

import re
from typing import Any

from ksearch_agent.task import Task, list_task_names, load_task

_ALIASES = {
    "rmsnorm": ("rmsnorm", "rms norm", "rms-norm", "root mean square"),
    "softmax": ("softmax", "soft max"),
    "trimul": ("trimul", "triangle multiplicative", "triangle mult", "tri mul", "alphafold"),
}
_AXIS_WORDS = {
    "hidden": ("hidden_size", "hidden_dim"),
    "width": ("row_len",),
    "wide": ("row_len",),
    "row": ("row_len",),
    "rows": ("row_len",),
}


def match_bundled(text: str) -> str | None:
    """The bundled task a request names, if its stated sizes and dtypes fit that task."""
    low = text.lower()
    for name in list_task_names():
        if not any(alias in low for alias in _ALIASES.get(name, (name,))):
            continue
        task = load_task(name)
        return name if _consistent(low, task) else None
    return None


def _consistent(low: str, task: Task) -> bool:
    consts = {n: a.value for n, a in task.definition.axes.items() if a.type == "const"}
    for number, word in re.findall(
        r"(?<![a-z\d])(\d{2,6})[-\s]*(?:wide|element)?\s*(hidden|width|wide|rows?)?", low
    ):
        for axis_word, axes in _AXIS_WORDS.items():
            if word == axis_word or (not word and axis_word in low):
                wanted = [a for a in axes if a in consts]
                if wanted and all(consts[a] != int(number) for a in wanted):
                    return False
    dtypes = {s.dtype for s in task.definition.inputs.values()}
    for word, dtype in (
        ("bf16", "bfloat16"),
        ("bfloat16", "bfloat16"),
        ("fp16", "float16"),
        ("fp32", "float32"),
    ):
        if word in low and dtype not in dtypes:
            return False
    return True


def follow_up(text: str, last: dict[str, Any] | None) -> dict[str, Any] | None:
    """A request that continues or varies the thread's last run, or None."""
    if not last:
        return None
    low = text.lower()
    more = re.search(r"(\d+)\s+more\s+rounds?", low)
    if more:
        return {
            "task": last["task"],
            "language": last["language"],
            "continue_run": last["run_dir"],
            "rounds": int(last["rounds"]) + int(more.group(1)),
        }
    for language in ("cuda", "triton"):
        if (
            language in low
            and language != last["language"]
            and re.search(r"\b(try|use|instead|switch)\b", low)
        ):
            return {"task": last["task"], "language": language, "rounds": last["rounds"]}
    return None


def answer_text(request: dict[str, Any], out: dict[str, Any], kernel_source: str | None) -> str:
    """The reply after a search: status, the per-workload table, the kernel and where the run lives."""
    lines = [
        f"Search on **{request['task']}** ({request['language']}, {request['rounds']} rounds): "
        f"{out.get('status')}. Run directory: `{out.get('run_dir')}`."
    ]
    best = out.get("best")
    if not best:
        lines.append("No candidate passed, so there is no kernel to report.")
        return "\n\n".join(lines)
    summary = out.get("eval_summary") or {}
    prof = summary.get("profile") or {}
    if prof.get("measured"):
        lines.append(
            f"Best candidate `{best['candidate_id']}`: **{prof['geomean_speedup']:.2f}x** the PyTorch reference "
            f"(geomean {prof['geomean_latency_ms']:.4f} ms vs {prof['geomean_reference_ms']:.4f} ms)."
        )
        rows = ["| workload | latency ms | reference ms | speedup |", "|---|---|---|---|"]
        rows += [
            f"| {w['workload']} | {w['latency_ms']:.4f} | {w['reference_latency_ms']:.4f} | {w['speedup']:.2f} |"
            for w in prof.get("workloads", [])
            if w.get("latency_ms")
        ]
        lines.append("\n".join(rows))
    else:
        corr = summary.get("correctness") or {}
        lines.append(
            f"Best candidate `{best['candidate_id']}` passes correctness ({corr.get('checked', '?')}); speed was "
            "not measured on this machine (no GPU)."
        )
    if kernel_source:
        lines.append("```python\n" + kernel_source.strip()[:6000] + "\n```")
    return "\n\n".join(lines)
