"""Markdown summary of ``cheats_gpu.json`` (from cheats_gpu_check.py); every number comes from the JSON.

Usage: ``python evals/report_cheats.py evals/results/cheats_gpu.json > evals/results/cheats_gpu.md``.
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    r = json.load(open(path))
    rows = r["cheats_screened"]
    caught = sum(x["caught"] for x in rows)
    faults = r["faults"]
    survived = sum(f["next_candidate"] == "PASSED" for f in faults)
    restarts = [f["restart_seconds"] for f in faults if f["restart_seconds"]]
    out = [f"# Untrusted candidates on the GPU — {r['date']}", "",
           f"Device: {r['gpu']}. Command: `{r['command']}` through the device tool (package installed); summary by "
           "`python evals/report_cheats.py`.", "",
           f"- Cheat candidates caught: **{caught}/{len(rows)}** (11 patterns × rmsnorm and trimul, with variants); "
           f"status as each file expects: {sum(x['as_expected'] for x in rows)}/{len(rows)}.",
           f"- Faults survived (the next candidate in the same engine passed): **{survived}/{len(faults)}**.",
           f"- Worker restart on the H100: {min(restarts):.1f}–{max(restarts):.1f} s." if restarts else "", "",
           "## Cheats (normal engine: static screen, then run-time checks)", "",
           "| file | expected | got | reason |", "|---|---|---|---|"]
    for x in rows:
        reason = (x["reasons"][0] if x["reasons"] else "").replace("|", "/").replace("\n", " ")[:150]
        out.append(f"| {x['file']} | {x['expected']}{'[' + x['rule'] + ']' if x['rule'] else ''} | {x['status']} | {reason} |")
    out += ["", "## The same cheats with the static screen switched off (run-time checks alone)", "",
            "| file | got | reason |", "|---|---|---|"]
    for d in r["cheats_dynamic_only"]:
        out.append(f"| {d['file']} | {d['status']} | {d['log'].replace('|', '/').replace(chr(10), ' ')[:150]} |")
    out += ["", "## Faults", "", "| candidate | status | seconds to status | worker restart s | next candidate |",
            "|---|---|---|---|---|"]
    for f in faults:
        rs = f"{f['restart_seconds']:.1f}" if f["restart_seconds"] else "not needed"
        out.append(f"| {f['file']} | {f['status']} | {f['seconds_to_status']:.1f} | {rs} | {f['next_candidate']} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
