"""Event-driven simulation: a hardware-agnostic task/resource/memory engine, pipeline-parallel
schedules built on it, and a caching-allocator model.

- :mod:`simhw.sim.engine`: :class:`TaskGraph`, :class:`Schedule`, :func:`simulate`.
- :mod:`simhw.sim.pipeline`: GPipe, 1F1B, interleaved 1F1B, ZB-H1, V-Half, V-Min as task graphs.
- :mod:`simhw.sim.allocator`: CUDA-caching-allocator-like model of reserved vs allocated bytes.
"""
from .engine import (DependencyCycleError, Schedule, SimulationDeadlock, TaskGraph,
                     TaskGraphBuilder, simulate)

__all__ = ["DependencyCycleError", "Schedule", "SimulationDeadlock", "TaskGraph",
           "TaskGraphBuilder", "simulate"]
