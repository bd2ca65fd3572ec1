"""API keys are never written: the one place that knows which strings to mask, and masks them.

A server may repeat the key it refused in its error message (OpenAI: ``Incorrect API key provided: sk-...``),
and that message travels: into the :class:`~ksearch_agent.llm.endpoint.EndpointError` the run stops on (which
LangGraph's checkpointer stores in ``checkpoints.sqlite``), the transcript, log records, an attempt's log.
Each of those is built from :func:`redact`'s output, so no copy of the raw text is made in the first place.

The keys to mask are remembered where they are read (:func:`remember_key_in`, with the name of the variable
that ``--api-key-env`` names); anything that looks like an OpenAI key (``sk-`` and a long token) is masked
too, in case a key the run never read (another variable, a proxy's own) comes back in a server's words.
"""

from __future__ import annotations

import os
import re
import threading

__all__ = ["MASK", "redact", "remember_key", "remember_key_in"]

MASK = "***"
_MIN_KEY_LEN = 4  # shorter values ("", "x") would mask ordinary text, and are no secret anyway
_KEY_LIKE = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{8,}")
_keys: set[str] = set()
_lock = threading.Lock()


def remember_key(value: str | None) -> None:
    """Mask ``value`` in everything :func:`redact` sees from now on in this process."""
    if value and len(value) >= _MIN_KEY_LEN:
        with _lock:
            _keys.add(value)


def remember_key_in(env_var: str | None) -> None:
    """Mask the value of the environment variable ``env_var`` (the API key in use), if it is set."""
    if env_var:
        remember_key(os.environ.get(env_var))


def redact(text: str) -> str:
    """``text`` with every remembered key, and every ``sk-...`` token, replaced by ``***``.

    Apply it before clipping a text to a length: a clip could cut a key in two, and half a key no longer
    matches.
    """
    with _lock:
        keys = sorted(_keys, key=len, reverse=True)  # a key that contains another is masked whole
    for key in keys:
        text = text.replace(key, MASK)
    return _KEY_LIKE.sub(MASK, text)
