"""Workloads: transformer runs from YAML or built-in models, and PyTorch traces, as op graphs."""
