"""Reading a judge trace (``KSEARCH_JUDGE_TRACE=1``): the lines the judge writes per timed call, for the analyses
in evals/judge_paired.py and evals/judge_host.py. ``sample WORKLOAD SIDE MS`` is written for every side's call in
call order (``WorkloadTimer._one``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

SAMPLE = re.compile(r"sample (\S+) (\S+) ([0-9.]+)$")
T = TypeVar("T")


def by_workload(rows: Iterable[tuple[str, T]]) -> list[tuple[str, list[T]]]:
    """Consecutive rows of one workload, in order: one evaluation of it (the next evaluation starts elsewhere)."""
    out: list[tuple[str, list[T]]] = []
    for wl, row in rows:
        if not out or out[-1][0] != wl:
            out.append((wl, []))
        out[-1][1].append(row)
    return out
