"""Writes through a near-null pointer from Python (SIGSEGV)."""

import ctypes


def run(hidden_states, weight):
    ctypes.memset(8, 0, 8)  # write to an unmapped page
    return None
