"""What a tool call runs against: the run's task, its language and the engine (one per device, from
:mod:`ksearch_agent.resources`)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from ksearch_agent.candidate import Candidate
from ksearch_agent.coder_tools import candidate_from_files
from ksearch_agent.engine import Engine
from ksearch_agent.task import Task

FILES_DESCRIPTION = "complete candidate files: file name -> source (run.py, and kernel.cu for CUDA)"
WORKLOADS_DESCRIPTION = "workload ids to run (default: all)"


class CandidateFiles(BaseModel):
    """The arguments every tool takes: the candidate's complete files."""

    files: dict[str, str] = Field(min_length=1, description=FILES_DESCRIPTION)


@dataclass(frozen=True)
class ToolSession:
    """The task, language and engine the tools of one search run against."""

    task: Task
    language: str
    engine: Engine

    def candidate(self, files: dict[str, str]) -> Candidate:
        """The candidate the files describe (ValueError naming what is missing)."""
        return candidate_from_files(files, self.language)

    def workloads(self, ids: list[str] | None) -> list[str] | None:
        """The workload ids, checked against the task (KeyError naming unknown ones); None for all."""
        if ids:
            self.task.select(ids)
        return ids or None
