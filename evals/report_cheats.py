"""Markdown summary of ``cheats_gpu.json`` (from cheats_gpu_check.py); every number comes from the JSON.

Usage: ``python evals/report_cheats.py evals/results/cheats_gpu.json > evals/results/cheats_gpu.md``.
"""

from __future__ import annotations

import json
import sys


def _cell(text: str, n: int = 150) -> str:
    return text.replace("|", "/").replace("\n", " ")[:n]


def main(path: str) -> None:
    r = json.load(open(path))
    rows = r["cheats_screened"]
    caught = sum(x["caught"] for x in rows)
    faults = r.get("faults", [])
    survived = sum(f["next_candidate"] == "PASSED" for f in faults)
    starts = [f["contestant"].get("start_seconds") for f in faults if f["contestant"].get("start_seconds")]
    waits = [
        f["contestant"].get("waited_seconds")
        for f in faults
        if f["contestant"].get("waited_seconds") is not None
    ]
    good = r.get("good_after_all_cheats")
    out = [
        f"# Untrusted candidates on the GPU — {r['date']}",
        "",
        f"Device: {r['gpu']}. Command: `{r['command']}` through the device tool; summary by "
        "`python evals/report_cheats.py`.",
        "",
        f"- Cheat candidates caught: **{caught}/{len(rows)}**, all through one engine in file order; status (and "
        f"rule) as each file expects: {sum(x['as_expected'] for x in rows)}/{len(rows)}.",
        (
            f"- A good seed evaluated after all of them in the same engine: {good['status']} "
            f"(speedup {good['speedup']}); judge processes started: {r['judge_starts']}."
            if good
            else "- **Run cut short** before the good seed and the faults (the device call's time limit); "
            "what it screened is below."
        ),
        f"- Faults survived (the next candidate in the same engine passed): **{survived}/{len(faults)}**; "
        f"judge restarted: {sum(f['judge_restarted'] for f in faults)} times.",
        (
            f"- Contestant start-up {min(starts):.1f}–{max(starts):.1f} s, of which the evaluation waited "
            f"{min(waits):.2f}–{max(waits):.2f} s (a spare is started ahead of need)."
            if starts and waits
            else ""
        ),
        "",
        "## Cheats (normal engine: static screen, then run-time checks)",
        "",
        "| file | phase | expected | got | reason |",
        "|---|---|---|---|---|",
    ]
    for x in rows:
        reason = _cell(x["reasons"][0] if x["reasons"] else "")
        rule = f"[{x['rule']}]" if x["rule"] else ""
        out.append(
            f"| {x['file']} | {x['phase']} | {'/'.join(x['expected'])}{rule} | {x['status']} | {reason} |"
        )
    out += [
        "",
        "## Some cheats with the static screen switched off (run-time checks alone)",
        "",
        "| file | got | reason |",
        "|---|---|---|",
    ]
    for d in r.get("cheats_dynamic_only", []):
        out.append(f"| {d['file']} | {d['status']} | {_cell(d['log'])} |")
    out += [
        "",
        "## Faults",
        "",
        "| candidate | status | seconds to status | judge restarted | next candidate |",
        "|---|---|---|---|---|",
    ]
    for f in faults:
        out.append(
            f"| {f['file']} | {f['status']} | {f['seconds_to_status']:.1f} | {f['judge_restarted']} | "
            f"{f['next_candidate']} |"
        )
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
