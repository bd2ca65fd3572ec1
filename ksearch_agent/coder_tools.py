"""Turning the files a model wrote into a candidate (the tools themselves live in ``ksearch_agent.tools``)."""

from __future__ import annotations

from ksearch_agent.candidate import Candidate, detect_api


def candidate_from_files(files: dict[str, str], language: str) -> Candidate:
    """The candidate whose entry is ``run.py`` (or the first .py file); a .cu file makes it a CUDA candidate.

    Raises ValueError when there is no Python entry file.
    """
    entry = "run.py" if "run.py" in files else next((n for n in files if n.endswith(".py")), "")
    if not entry:
        raise ValueError("no Python entry file (run.py) among the files")
    if any(n.endswith(".cu") for n in files):
        language = "cuda"  # a .cu file decides, whatever language the search started in
    return Candidate(language=language, files=files, entry=entry, api=detect_api(files[entry]))  # type: ignore[arg-type]
