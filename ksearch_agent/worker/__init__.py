"""Code that runs inside isolated worker processes.

Everything under this package imports only torch, triton, cuda-python, numpy and the standard
library: it runs next to untrusted candidate code, in a process the caller can kill and replace.
"""
