"""Markdown summary of the judge's cost on the GPU from two ``ksearch eval --json`` documents of the same
candidate, one from the in-process engine before the judge/contestant split and one after, run side by side
in one device call. Every number comes from the JSON files.

Usage: ``python evals/report_judge.py BEFORE.json AFTER.json "COMMAND" > evals/results/judge_gpu.md``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _row(name: str, d: dict[str, Any]) -> str:
    passed = sum(w["status"] == "PASSED" for w in d["workloads"])
    return (
        f"| {name} | {d['status']} | {passed}/{len(d['workloads'])} | {d['seconds']:.1f} | "
        f"{d['geomean_latency_ms']:.4f} | {d['geomean_reference_ms']:.3f} | {d['geomean_speedup']:.2f} |"
    )


def main(before_path: str, after_path: str, command: str) -> None:
    before, after = json.load(open(before_path)), json.load(open(after_path))
    out = [
        "# The judge's cost on the GPU: `ksearch eval trimul` of the dispatch seed, before and after the split",
        "",
        f"Device: {after['device']}. Command (both versions in one device call, same machine): `{command}`.",
        "",
        "| engine | status | workloads passed | eval seconds | geomean latency ms (flushed) | "
        "reference ms | speedup |",
        "|---|---|---|---|---|---|---|",
        _row("in-process worker (before)", before),
        _row("judge + contestant (after)", after),
        "",
        f"Wall time ratio after/before: {after['seconds'] / before['seconds']:.2f}.",
        "",
        "| benchmark | before ms | after ms |",
        "|---|---|---|",
    ]
    lat = {w["id"]: w.get("latency_ms") for w in before["workloads"]}
    for w in after["workloads"]:
        if w.get("latency_ms"):
            out.append(f"| {w['id']} | {lat.get(w['id']) or 0:.4f} | {w['latency_ms']:.4f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
