"""PyTorch profiler traces as workloads: the entry points the CLI and notebooks use.

The implementation lives in :mod:`simhw.trace` (reader, linking, FLOP/byte rules, re-costing);
this module keeps the workload-side names stable. ``load_trace`` and ``trace_to_graph`` are the
workload stage; ``estimate_trace`` and ``validate_trace`` call the cost model and are imported
lazily so that importing this module does not pull the cost stage in.
"""
from __future__ import annotations

from ..trace.reader import Trace, is_trace_path, load_trace, trace_from_dict

__all__ = ["Trace", "is_trace_path", "load_trace", "trace_from_dict", "trace_to_graph", "estimate_trace",
           "validate_trace", "ape_table", "summarize_trace"]


def trace_to_graph(source, *, tf32: bool | None = None):
    """(Graph, [UnmappedRow]) of a trace path or :class:`Trace`; see simhw.trace.cost."""
    from ..trace.cost import trace_to_graph as impl
    return impl(source, tf32=tf32)


def estimate_trace(source, hw, *, ops: bool = False, tf32: bool | None = None, power=None):
    """A TraceEstimate (an EstimateResult, schema simhw.estimate/1) of the trace on ``hw``;
    ``power``: a cost.power.PowerState (default steady)."""
    from ..trace.cost import estimate_trace as impl
    return impl(source, hw, ops=ops, tf32=tf32, power=power)


def validate_trace(source, hw, *, tf32: bool | None = None, power=None):
    """DataFrame(kind, name, phase, predicted_s, measured_s, kernels) of a CUDA trace's costed ops;
    ``power``: a cost.power.PowerState (default burst)."""
    from ..trace.cost import validate_trace as impl
    return impl(source, hw, tf32=tf32, power=power)


def ape_table(df):
    """Per-kind median/p90 absolute percentage error of a validate_trace frame."""
    from ..trace.cost import ape_table as impl
    return impl(df)


def summarize_trace(source) -> dict:
    """The ``simhw trace summarize`` dictionary (schema simhw.trace-summary/1)."""
    from ..trace.summary import summarize
    return summarize(source)
