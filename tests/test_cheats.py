"""Known ways generated kernels game evaluators, for rmsnorm and trimul: each must be caught, with the reason.

Each file in tests/cheats/ starts with ``expect: STATUS[rule]``: the status the engine must give and, for a
rejection, the rule (static screen or dynamic check) that must be named in the result.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ksearch_agent.candidate import Candidate
from ksearch_agent.engine import Engine
from ksearch_agent.task import load_task

CHEATS = sorted((Path(__file__).parent / "cheats").glob("*.py"))


def _expectation(path: Path) -> tuple[str, str | None]:
    m = re.match(r'"""expect: (\w+)(?:\[([\w-]+)\])?', path.read_text())
    assert m, f"{path.name} has no expectation line"
    return m.group(1), m.group(2)


@pytest.mark.parametrize("path", CHEATS, ids=[p.stem for p in CHEATS])
def test_cheat_is_caught_with_its_reason(path: Path, cpu_engine: Engine) -> None:
    status, rule = _expectation(path)
    task = load_task(path.stem.split("_")[0])
    res = cpu_engine.run_correctness(task, Candidate.from_path(path))
    assert res.status == status, [(w.workload, w.status, w.log[:200]) for w in res.workloads]
    if status == "REJECTED":
        reasons = res.rejections or [w.log for w in res.workloads if w.status == "REJECTED"]
        assert reasons, "a rejection must say why"
        if rule is not None:
            assert any(f"[{rule}]" in r for r in reasons), reasons


def test_every_pattern_of_the_issue_is_covered_for_both_tasks() -> None:
    for task in ("rmsnorm", "trimul"):
        patterns = {p.stem.split("_")[1][:2] for p in CHEATS if p.stem.startswith(task)}
        assert patterns == {f"{i:02d}" for i in range(1, 12)}, (task, sorted(patterns))
