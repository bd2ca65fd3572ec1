"""Per-round paired ratios against the score's ratio of medians, from a judge trace (``KSEARCH_JUDGE_TRACE=1``).

For each workload evaluation in a judge log: the library's net time over the candidate's net time as the score
takes it (median over median), and as the median of the round-by-round ratios, each also for the first and the
second half of the rounds. A steadier estimator would agree better between the halves.

Usage: ``python evals/judge_paired.py WORKDIR/workers/worker-gpu.log [...]`` (prints a table).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from judge_trace import SAMPLE, by_workload


def segments(lines: list[str]) -> list[tuple[str, list[tuple[str, float]]]]:
    """Each workload evaluation's (side, ms) samples in call order."""
    found = (m for line in lines if (m := SAMPLE.search(line.strip())) is not None)
    return by_workload((m.group(1), (m.group(2), float(m.group(3)))) for m in found)


def rounds(calls: list[tuple[str, float]]) -> list[dict[str, float]]:
    """The timed rounds (warm-up calls dropped): each starts with the candidate; empty calls end the first."""
    first_null = next((i for i, (n, _) in enumerate(calls) if n.startswith("null:")), None)
    starts = [i for i in range(first_null or 0) if calls[i][0] == "candidate"]
    if first_null is None or not starts:
        return []
    out: list[dict[str, float]] = []
    for name, ms in calls[starts[-1] :]:
        if name == "candidate":
            out.append({})
        out[-1][name] = ms
    return out


def ratios(lib: list[float], cand: list[float]) -> tuple[float, float]:
    return statistics.median(lib) / statistics.median(cand), statistics.median(
        [a / b for a, b in zip(lib, cand, strict=True)]
    )


def main(paths: list[str]) -> int:
    print("| workload | rounds | medians: all / 1st half / 2nd half | paired: all / 1st half / 2nd half |")
    print("|---|---|---|---|")
    for path in paths:
        for wl, calls in segments(Path(path).read_text(errors="replace").splitlines()):
            rs = rounds(calls)
            both = [r for r in rs if "candidate" in r and "library" in r]
            if len(both) < 10:
                continue
            null_c = statistics.median([r["null:candidate"] for r in rs if "null:candidate" in r] or [0.0])
            null_j = statistics.median([r["null:judge"] for r in rs if "null:judge" in r] or [0.0])
            cand = [max(r["candidate"] - null_c, 1e-6) for r in both]
            lib = [max(r["library"] - null_j, 0.0) for r in both]
            h = len(both) // 2
            parts = [ratios(lib, cand), ratios(lib[:h], cand[:h]), ratios(lib[h:], cand[h:])]
            med = " / ".join(f"{p[0]:.3f}" for p in parts)
            paired = " / ".join(f"{p[1]:.3f}" for p in parts)
            print(f"| {wl} | {len(both)} | {med} | {paired} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
