"""simhw: what will this ML workload cost on that machine, and which schedule makes it cheapest.

Python API (heavy modules load on first use)::

    import simhw
    hw = simhw.load_hw("a100")
    wl = simhw.load_workload("workloads/llama2-7b-train.yaml")
    result = simhw.estimate(wl, hw)
    result.to_frame()
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_hw": ("simhw.spec.load", "load_hw"),
    "available_hw": ("simhw.spec.load", "available_hw"),
    "load_workload": ("simhw.workload.from_yaml", "load_workload"),
    "build_graph": ("simhw.workload.transformer", "build_graph"),
    "estimate": ("simhw.cost.estimate", "estimate"),
    "sweep": ("simhw.cost.sweep", "sweep"),
    "plan": ("simhw.cost.plan", "plan"),
    "memory_breakdown": ("simhw.cost.memory", "memory_breakdown"),
    "simulate": ("simhw.sim.run", "simulate_step"),
    "optimize": ("simhw.schedule.activation", "schedule_activations"),
    "serve": ("simhw.sim.serving", "simulate_serving"),
    "poisson_requests": ("simhw.sim.requests", "poisson_requests"),
    "ServingOptions": ("simhw.sim.serving", "ServingOptions"),
    "max_goodput": ("simhw.sim.goodput", "max_goodput"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simhw' has no attribute {name!r}")
