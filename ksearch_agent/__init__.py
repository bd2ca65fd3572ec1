"""ksearch-agent: GPU kernel search with a co-evolving world model.

Kept import-light on purpose: the isolated GPU worker imports this package and must only pull in
torch, triton, cuda-python, numpy and the standard library.
"""

__version__ = "0.1.0"
