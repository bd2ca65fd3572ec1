"""Kills its own process in the middle of the evaluation."""

import os


def run(hidden_states, weight):
    os._exit(17)
