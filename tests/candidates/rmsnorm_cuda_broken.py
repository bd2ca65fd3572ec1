"""Host side of a CUDA candidate whose broken.cu has a syntax error."""

from pathlib import Path

from ksearch_agent.cuda_launch import load_cuda


def run(hidden_states, weight):
    load_cuda(Path(__file__).with_name("broken.cu"))
    return hidden_states
