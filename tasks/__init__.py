"""Bundled task files (definition, reference, workloads, seed kernels), shipped as package data."""
