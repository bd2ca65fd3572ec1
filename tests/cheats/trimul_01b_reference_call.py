"""expect: REJECTED[reference-call] — Imports the task's reference and returns its result."""

import triton  # noqa: F401  (claims to be a Triton candidate)
from reference import run as reference_run


def run(
    x,
    mask,
    norm_weight,
    norm_bias,
    left_proj,
    right_proj,
    left_gate,
    right_gate,
    out_gate,
    to_out_norm_weight,
    to_out_norm_bias,
    to_out,
):
    return reference_run(
        x,
        mask,
        norm_weight,
        norm_bias,
        left_proj,
        right_proj,
        left_gate,
        right_gate,
        out_gate,
        to_out_norm_weight,
        to_out_norm_bias,
        to_out,
    )
