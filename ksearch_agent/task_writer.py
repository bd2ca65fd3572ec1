"""Turning a request in plain words into a validated task, with an LLM.

The model writes a definition, a PyTorch reference and workloads; the files are written under the runs
root, loaded with the normal task loader, and the reference is run (isolated, on the CPU workloads) to check
that it works and that its outputs have the declared shapes and dtypes. Problems go back to the model once;
if they remain they are returned for the user.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from ksearch_agent.engine import Engine
from ksearch_agent.llm.parsing import ParseError, extract_json
from ksearch_agent.llm.usage import PriceTable, UsageLedger
from ksearch_agent.llm_policy import message_text
from ksearch_agent.prompts import render
from ksearch_agent.task import BUNDLED_TASKS_DIR, Task, TaskFileError, load_task


def _write(payload: dict, root: Path) -> Path:
    definition, reference, workloads = (
        payload.get("definition"),
        payload.get("reference"),
        payload.get("workloads"),
    )
    if not isinstance(definition, dict) or not isinstance(reference, str) or not isinstance(workloads, list):
        raise ParseError('the JSON needs "definition" (object), "reference" (string) and "workloads" (list)')
    name = str(definition.get("name", ""))
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
        raise ParseError(f"definition.name {name!r} must be lowercase letters, digits and underscores")
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    definition.setdefault("reference", "reference.py")
    (directory / "definition.json").write_text(json.dumps(definition, indent=1))
    (directory / str(definition["reference"])).write_text(reference)
    (directory / "workloads.json").write_text(json.dumps({"workloads": workloads}, indent=1))
    return directory


def write_task(
    model: BaseChatModel,
    model_name: str,
    request: str,
    tasks_root: Path,
    engine: Engine,
    ledger: UsageLedger,
    prices: PriceTable | None = None,
) -> tuple[Task | None, list[str]]:
    """A validated task, or the problems that remained after one round of fixes."""
    example = (BUNDLED_TASKS_DIR / "rmsnorm" / "definition.json").read_text()
    messages: list[BaseMessage] = [
        SystemMessage(
            "You define GPU kernel tasks precisely: shapes, dtypes, tolerances and a correct reference."
        ),
        HumanMessage(render("new_task", request=request, example=example)),
    ]
    problems: list[str] = []
    for _ in range(2):
        reply = model.invoke(messages)
        ledger.record(
            "intake",
            reply if hasattr(reply, "usage_metadata") else None,
            model_name,  # type: ignore[arg-type]
            prices or PriceTable(),
        )
        try:
            directory = _write(extract_json(message_text(reply)), tasks_root)
            task = load_task(directory)
            problems = engine.check_reference(task)
        except (ParseError, TaskFileError, OSError) as exc:
            problems = [str(exc)]
        if not problems:
            return task, []
        messages += [
            reply,
            HumanMessage(
                "The task did not validate:\n- "
                + "\n- ".join(problems)
                + "\nFix it and answer with the complete JSON again."
            ),
        ]
    return None, problems
