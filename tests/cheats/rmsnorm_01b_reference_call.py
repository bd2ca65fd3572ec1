"""expect: REJECTED[reference-call] — Imports the task's reference and returns its result."""

import triton  # noqa: F401  (claims to be a Triton candidate)
from reference import run as reference_run


def run(hidden_states, weight):
    return reference_run(hidden_states, weight)
