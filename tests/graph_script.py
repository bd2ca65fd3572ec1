"""Model answers for the graph tests, shaped like real models answer: prose, fences, the odd slip."""

from __future__ import annotations

import json
from pathlib import Path

from ksearch_agent.task import BUNDLED_TASKS_DIR

CANDIDATES = Path(__file__).parent / "candidates"
GOOD = (BUNDLED_TASKS_DIR / "rmsnorm" / "seeds" / "triton_rowwise.py").read_text()
WRONG = (CANDIDATES / "rmsnorm_wrong.py").read_text()
BROKEN = (CANDIDATES / "rmsnorm_compile_error.py").read_text()

INITIAL = {
    "kernel_summary": "Row-wise RMSNorm over 4096 bf16 values: one read, one write; memory bound at every batch.",
    "open_questions": ["Does one program per row saturate bandwidth at batch 1?"],
    "analysis": {"problem_class": "row reduction + elementwise", "regimes": "memory bound"},
    "nodes": [
        {
            "ref": "row",
            "parent": "root",
            "decision": "one program owns one whole row in registers",
            "rating": 7,
            "confidence": 0.6,
            "action": {
                "title": "row-per-program kernel",
                "description": "load, reduce, scale, store",
                "difficulty": 1,
                "score": 0.9,
                "expected_speedup": 2.0,
            },
        },
        {
            "ref": "split",
            "parent": "root",
            "decision": "several programs share a row and combine partial sums",
            "rating": 5,
            "confidence": 0.4,
            "action": {
                "title": "split-row two-pass kernel",
                "difficulty": 3,
                "score": 0.5,
                "expected_speedup": 1.5,
            },
        },
        {
            "ref": "row_vec",
            "parent": "row",
            "decision": "wider vector loads within the row owner",
            "action": {"title": "16-byte loads", "difficulty": 2, "score": 0.7, "expected_speedup": 1.1},
        },
        {
            "ref": "persist",
            "parent": "root",
            "decision": "a persistent grid walks rows in a loop",
            "rating": 4,
            "action": {
                "title": "persistent row loop",
                "difficulty": 2,
                "score": 0.3,
                "expected_speedup": 1.3,
            },
        },
    ],
}


def initial_answer() -> str:
    return (
        "Let me think about the problem first. RMSNorm is a per-row reduction followed by an elementwise "
        "scale, so every workload is bound by memory bandwidth.\n\nHere is the world model:\n\n```json\n"
        + json.dumps(INITIAL, indent=2)
        + "\n```\nI expect the row-per-program family to win."
    )


def code_answer(source: str, note: str = "Here is the kernel.") -> str:
    return f"{note}\n\n`run.py`:\n```python\n{source}\n```\nIt keeps the whole row in registers."


def edit_answer(ops: list[dict]) -> str:
    return "Updating beliefs from the measurement.\n```json\n" + json.dumps({"ops": ops}) + "\n```"


MALFORMED_EDIT = 'Sure! {"ops": [{"op": "update_node", "id": "n1", "rating": 11}, {"op": "teleport"}'
