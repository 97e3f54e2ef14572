"""PyTorch profiler traces: read (reader.py), link kernels and phases (link.py), cost from shapes
(ops.py, rules.py), re-cost on other hardware and validate (cost.py), summarize (summary.py).

Public API::

    is_trace_path(path) -> bool
    load_trace(path) -> Trace                       # TraceError on unreadable input
    trace_to_graph(trace_or_path) -> (Graph, [UnmappedRow])
    estimate_trace(trace_or_path, hw, ops=False, power=None) -> TraceEstimate (an EstimateResult; steady)
    validate_trace(trace_or_path, hw, power=None) -> DataFrame(kind, name, phase, predicted_s, measured_s,
                                                               kernels)   # burst by default
    ape_table(df) -> DataFrame(kind, ops, predicted_s, measured_s, median_ape, p90_ape)
    summarize(trace_or_path) -> dict;  render_table(summary) -> str
"""
from .reader import Trace, is_trace_path, load_trace, trace_from_dict

__all__ = ["Trace", "is_trace_path", "load_trace", "trace_from_dict", "trace_to_graph", "estimate_trace",
           "validate_trace", "ape_table", "summarize", "render_table", "unmapped_report"]


def __getattr__(name):  # the cost side imports the cost model: load it only when asked for
    if name in ("trace_to_graph", "estimate_trace", "validate_trace", "ape_table", "unmapped_report",
                "TraceEstimate", "UnmappedRow"):
        from . import cost
        return getattr(cost, name)
    if name in ("summarize", "render_table"):
        from . import summary
        return getattr(summary, name)
    raise AttributeError(name)
