"""Prints 100 MB to stdout."""


def run(hidden_states, weight):
    chunk = "x" * (1 << 20)
    for _ in range(100):
        print(chunk)
    return hidden_states
