"""Does a candidate's reported GPU time follow its contestant's host time? From a judge trace (``KSEARCH_JUDGE_TRACE=1``).

For each workload evaluation (every timed candidate call after the first five, warm-up calls included): the
reported times' quartiles, their correlation with the host time around the call
(``region``) and before it (``before``: receiving the request and mapping the slab's views, which the GPU cannot
lengthen), and the medians of the three in the fastest and slowest quarter of calls. A strong link with ``before``
says slow-host episodes reach the GPU timing: the call's host path outlasts the launch overlap's spin. Traces that
carry the spin's own GPU time (``spin_ms``, recorded since 2026-12-07 evening) add its median per quarter: a spin
longer than the launch overlap asked for means the GPU's clocks were down when the call began.

Usage: ``python evals/judge_host.py WORKDIR/workers/worker-gpu.log`` (prints a table).
"""

from __future__ import annotations

import math
import re
import statistics
import sys
from pathlib import Path

from judge_trace import SAMPLE, by_workload

TIMED = re.compile(
    r"timed candidate wall [0-9.]+ ms reported ([0-9.]+) ms host "
    r"\{'before_ms': ([0-9.e-]+), 'region_ms': ([0-9.e-]+)(?:.*'spin_ms': ([0-9.e-]+))?"
)
Call = tuple[float, float, float, float]  # reported, before, region, spin (nan where the trace has none)
WARM_UP = 5  # the first calls of an evaluation compile and warm caches


def calls(lines: list[str]) -> list[tuple[str, Call]]:
    """(workload, call) per timed candidate call; the trace's sample line names the workload."""
    out: list[tuple[str, Call]] = []
    pending: Call | None = None
    for line in lines:
        if m := TIMED.match(line):
            spin = float(m.group(4)) if m.group(4) else math.nan
            pending = (float(m.group(1)), float(m.group(2)), float(m.group(3)), spin)
        elif (m := SAMPLE.match(line)) and m.group(2) == "candidate" and pending is not None:
            out.append((m.group(1), pending))
            pending = None
    return out


def corr(a: list[float], b: list[float]) -> float:
    return statistics.correlation(a, b) if len(set(a)) > 1 and len(set(b)) > 1 else 0.0


def main(paths: list[str]) -> int:
    print(
        "| workload | calls | reported q1 / median / q3 ms | corr. region | corr. before | "
        "fastest quarter: reported / before / region / spin ms | slowest quarter |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        found = calls(Path(path).read_text(errors="replace").splitlines())
        for wl, rows in by_workload(found):
            rows = rows[WARM_UP:]
            if len(rows) < 20:
                continue
            rep = [r[0] for r in rows]
            q1, med, q3 = statistics.quantiles(rep, n=4)
            ranked = sorted(rows)
            n = len(rows) // 4

            def medians(part: list[Call]) -> str:
                return " / ".join(f"{statistics.median(x[i] for x in part):.3f}" for i in range(4))

            print(
                f"| {wl} | {len(rows)} | {q1:.3f} / {med:.3f} / {q3:.3f} | "
                f"{corr(rep, [r[2] for r in rows]):.2f} | {corr(rep, [r[1] for r in rows]):.2f} | "
                f"{medians(ranked[:n])} | {medians(ranked[-n:])} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
