"""Re-cost a profiler trace on any hardware, and validate simhw against a CUDA trace's own timings.

``trace_to_graph`` turns the costed ops of a trace (link.py) into a :class:`~simhw.workload.graph.Graph`
that :func:`simhw.cost.roofline.op_cost` prices. ``estimate_trace`` sums those prices into the same
result fields as a YAML workload (schema ``simhw.estimate/1``) with these trace conventions:

- every non-collective op runs on one compute stream: their times add up;
- collectives run on a communication stream; forward and optimizer collectives are exposed, backward
  ones overlap backward compute and only their excess is exposed (the same convention as
  cost/estimate.py for the data-parallel gradient reduction);
- totals are per profiler step: the sums over the trace divided by the number of ``ProfilerStep#``
  annotations (1 when there are none); the trace is one device (devices = 1);
- memory: the peak ``Total Allocated`` of the ``[memory]`` events on the traced device, reported as
  ``activations_bytes`` (the trace does not say what the bytes hold); 0 without memory events;
- FP32 GEMMs whose kernels were TF32 tensor-core kernels (cutlass ``s1688gemm``, ``*tf32*``) are
  costed as TF32; others at the FP32 peak (PyTorch's default, ``allow_tf32 = False``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..cost.comm import collective_time_s, group_link, host_link_bytes_per_s
from ..cost.estimate import EstimateResult, OpCoster, OpResult
from ..cost.intensity import plain_intensity
from ..cost.kinetics import eflops as kinetics_eflops
from ..cost.memory import MemoryBreakdown
from ..cost.power import PowerState
from ..cost.roofline import Bound, OpCost
from ..errors import TraceError
from ..spec.model import DeviceSpec, DType, LinkKind, NodeSpec
from ..workload.graph import Collective, Graph, Op, OpKind, Phase, shape
from .link import Analysis, analyze
from .reader import Trace, load_trace

_COLLECTIVES = list(Collective)


@dataclass(frozen=True)
class UnmappedRow:
    name: str
    count: int
    share: float                    # of the trace's measured time (GPU time for CUDA traces, else CPU)
    reason: str


def _trace(source) -> Trace:
    return source if isinstance(source, Trace) else load_trace(source)


def _analysis(trace: Trace) -> Analysis:
    cached = getattr(trace, "_analysis", None)
    if cached is None:
        cached = analyze(trace)
        _warn(trace, cached)
        trace._analysis = cached
    return cached


def _warn(trace: Trace, a: Analysis) -> None:
    w = a.warnings
    name = Path(trace.path).name
    if not trace.has_shapes:
        rows = [r for r in a.unmapped_rows() if r[3].startswith("shapes not recorded")]
        share = sum(r[2] for r in rows)
        w.append(f"{name} has no Input Dims (profile with record_shapes=True): {sum(r[1] for r in rows)} ops, "
                 f"{share:.0%} of the measured time, cannot be re-costed; only ops whose bytes the trace "
                 "records (memcpy, memset) are estimated.")
    if a.bwd_nodes and a.bwd_matched < a.bwd_nodes:
        w.append(f"only {a.bwd_matched} of {a.bwd_nodes} backward nodes have their forward op in the trace "
                 "(a filtered or partial trace); backward ops are still costed.")
    if trace.gpu and not trace.device_properties:
        w.append("the trace has GPU kernels but no deviceProperties: the measuring GPU is unknown.")
    colls = [o for o in a.ops if o.est.kind is OpKind.COLLECTIVE]
    if colls and all(o.est.shape.get("ranks", 1) <= 1 for o in colls):
        w.append("collectives found but the group size is unknown (no distributedInfo/Group size): "
                 "they are costed as free.")
    unmapped = sum(r[2] for r in a.unmapped_rows())
    if unmapped > 0.05 and trace.has_shapes:
        w.append(f"{unmapped:.0%} of the measured time is in ops simhw cannot cost (listed as unmapped).")


def unmapped_report(source) -> list[UnmappedRow]:
    """Ops that could not be costed: name, count, share of measured time, why."""
    return [UnmappedRow(*r) for r in _analysis(_trace(source)).unmapped_rows()]


# memory-bound ops whose kernels the trace counts: each kernel beyond the first adds a launch (the
# GEMM and attention models price their own extra kernels)
_MULTI_KERNEL = (OpKind.ELEMENTWISE, OpKind.NORM, OpKind.SOFTMAX, OpKind.EMBEDDING, OpKind.LOSS,
                 OpKind.OPTIMIZER, OpKind.COPY)


def trace_to_graph(source, *, tf32: bool | None = None) -> tuple[Graph, list[UnmappedRow]]:
    """The trace's costed ops as a Graph (execution order), plus what could not be mapped.

    ``tf32``: cost FP32 GEMMs/convolutions as TF32 (None: only those whose kernels were TF32)."""
    trace = _trace(source)
    a = _analysis(trace)
    ops = []
    tokens = 0
    for t in a.ops:
        e = t.est
        dtype = e.dtype
        if dtype is DType.FP32 and e.kind in (OpKind.GEMM, OpKind.CONV) and (t.tf32 if tf32 is None else tf32):
            dtype = DType.TF32
        name = f"{t.name} [{t.context}]" if t.context else t.name
        keys = dict(e.shape or {})
        if t.kernels > 1 and e.kind in _MULTI_KERNEL:   # e.g. a sort-based embedding backward: 31 kernels
            keys["launches"] = float(t.kernels)
        ops.append(Op(name, e.kind, t.phase, -1, float(e.flops), dtype, weight_bytes=float(e.weight_bytes),
                      input_bytes=float(e.input_bytes), output_bytes=float(e.output_bytes),
                      model_flops=e.model_flops, shape=shape(**keys)))
        if e.kind is OpKind.EMBEDDING and t.phase is Phase.FWD and e.shape and "tokens" in e.shape:
            tokens = max(tokens, int(e.shape["tokens"]))
    graph = Graph(name=Path(trace.path).name, ops=tuple(ops), layers=0, tokens=tokens)
    return graph, unmapped_report(trace)


@dataclass(frozen=True)
class TraceEstimate(EstimateResult):
    """An :class:`EstimateResult` of a trace, with what the trace measured and what was not costed."""

    steps: int = 1
    trace_device: str = ""
    measured_time_s: float = 0.0    # per step: GPU busy time (CUDA traces) or top-level CPU op time
    unmapped: tuple = field(default=())
    warnings: tuple = field(default=())

    def to_dict(self, ops: bool = False) -> dict:
        out = super().to_dict(ops=ops)
        out.update(source="trace", steps=self.steps, trace_device=self.trace_device,
                   measured_time_s=self.measured_time_s, unmapped_ops=sum(u.count for u in self.unmapped),
                   unmapped_time_share=sum(u.share for u in self.unmapped))
        if ops:
            out["unmapped"] = [dict(name=u.name, count=u.count, share=u.share, reason=u.reason)
                               for u in self.unmapped]
            out["warnings"] = list(self.warnings)
        return out

    def notes(self, limit: int = 10) -> list[str]:
        """Lines for stderr: warnings, then the largest unmapped ops."""
        lines = [f"warning: {w}" for w in self.warnings]
        if self.unmapped:
            lines.append(f"not costed ({len(self.unmapped)} op names, "
                         f"{sum(u.share for u in self.unmapped):.1%} of measured time):")
            lines += [f"  {u.name[:70]:70s} x{u.count:<5d} {u.share:6.1%}  {u.reason}"
                      for u in self.unmapped[:limit]]
            if len(self.unmapped) > limit:
                lines.append(f"  ... and {len(self.unmapped) - limit} more (--format json --ops lists all)")
        return lines


class _Coster(OpCoster):
    """The cost model's memoised coster, with host copies over the host link; a trace has no
    workload, so a collective's group is its recorded rank count."""

    def comm_time(self, op: Op) -> float:
        s = op.shape
        ranks = int(s.get("ranks", 1))
        per_node = self.hw.device_count if isinstance(self.hw, NodeSpec) else ranks
        kind = _COLLECTIVES[int(s["collective"])]
        link = group_link(self.hw, ranks, per_node, kind)
        return collective_time_s(kind, s["bytes"], ranks, link, self.device, ranks_per_node=min(per_node, ranks))

    def _cost(self, op: Op) -> OpCost:
        if not op.shape.get("host_copy"):
            return super()._cost(op)
        link = self.hw.host_link if isinstance(self.hw, NodeSpec) else self.device.link(LinkKind.PCIE)
        t = op.output_bytes / host_link_bytes_per_s(self.hw) + (link.latency_s if link is not None else 0.0) \
            + self.device.efficiency.launch_s
        return OpCost(t, Bound.COMMUNICATION, 0.0, t, op.output_bytes * (link.energy_j_per_byte if link else 0.0))


def _peak_memory(trace: Trace) -> float:
    cuda = any(m[3] == 1 for m in trace.memory)
    peak = 0.0
    for m in trace.memory:
        if (m[3] == 1) == cuda and m[2] is not None:
            peak = max(peak, float(m[2]))
    return peak


def estimate_trace(source, hw: DeviceSpec | NodeSpec, *, ops: bool = False,
                   tf32: bool | None = None, power: PowerState | None = None) -> TraceEstimate:
    """Re-cost a trace (path or :class:`Trace`) on ``hw``; see the module docstring for conventions.
    ``power``: the die's state under the power limit (cost/power.py; default steady)."""
    trace = _trace(source)
    a = _analysis(trace)
    graph, unmapped = trace_to_graph(trace, tf32=tf32)
    coster = _Coster(hw, power=power or PowerState.STEADY)
    coster.use_step_clock(graph.ops)
    device = coster.device
    steps = a.steps
    bound = {b: 0.0 for b in Bound}
    opt_s = bwd_compute = fwd_comm = bwd_comm = 0.0
    dyn_j = model_flops = hw_flops = mem_bytes = 0.0
    gemm_flops: dict = {}
    rows = []
    for op in graph.ops:
        c = coster(op)
        t = c.time_s
        if op.kind in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
            if op.phase is Phase.BWD:
                bwd_comm += t
            else:
                fwd_comm += t
        elif op.phase is Phase.OPTIMIZER:
            opt_s += t
        else:
            bound[c.bound] += t
            bwd_compute += t if op.phase is Phase.BWD else 0.0
            model_flops += op.mflops
            hw_flops += op.flops
            mem_bytes += op.bytes
        dyn_j += c.energy_j
        if op.kind in (OpKind.GEMM, OpKind.ATTENTION, OpKind.CONV):
            gemm_flops[op.dtype] = gemm_flops.get(op.dtype, 0.0) + op.flops
        if ops:
            rows.append(OpResult(op.name, op.kind.value, op.phase.value, op.layer, op.flops, op.bytes,
                                 plain_intensity(op), c.bound.value, t, c.energy_j))
    comm = fwd_comm + max(0.0, bwd_comm - bwd_compute)
    compute_total = sum(bound.values())
    step = (compute_total + opt_s + comm) / steps
    dtype = max(gemm_flops, key=gemm_flops.get) if gemm_flops else DType.FP32
    peak = device.peak(dtype)
    model_flops, hw_flops, mem_bytes = model_flops / steps, hw_flops / steps, mem_bytes / steps
    energy = dyn_j / steps + device.busy_w * step
    breakdown = {"compute": bound[Bound.COMPUTE] / steps, "memory": bound[Bound.MEMORY] / steps,
                 "communication": (bound[Bound.COMMUNICATION] + comm) / steps, "latency": bound[Bound.LATENCY] / steps,
                 "pipeline_bubble": 0.0, "data_parallel": 0.0, "optimizer": opt_s / steps, "engine_overhead": 0.0}
    mem = MemoryBreakdown(0.0, 0.0, 0.0, _peak_memory(trace), 0.0, 0.0, device.main_memory.capacity_bytes
                          if device.memory else 0.0)
    mode = "train" if any(op.phase is Phase.BWD for op in graph.ops) else "prefill"
    return TraceEstimate(
        hardware=getattr(hw, "name", "?"), workload=graph.name, mode=mode, devices=1, step_time_s=step,
        total_time_s=step, tokens_per_s=graph.tokens / step if step > 0 and graph.tokens else 0.0,
        model_flops=model_flops, hardware_flops=hw_flops, mfu=model_flops / (step * peak) if step else 0.0,
        hfu=hw_flops / (step * peak) if step else 0.0, energy_j=energy, avg_power_w=energy / step if step else 0.0,
        cost_usd=step * device.cloud_usd_per_s, eflops=kinetics_eflops(hw_flops, mem_bytes, device, dtype),
        time_breakdown_s=MappingProxyType(breakdown), memory=mem, ops=tuple(rows), steps=steps,
        trace_device=trace.device_name(), measured_time_s=a.measured_total_s / steps, unmapped=tuple(unmapped),
        warnings=tuple(a.warnings), clock_scale=min(1.0, coster.clock or 1.0), power=coster.power.value)


def validate_trace(source, hw: DeviceSpec | NodeSpec, *, tf32: bool | None = None,
                   power: PowerState | None = None):
    """Predicted vs measured GPU time of every costed op that ran kernels in a CUDA trace.

    Returns a pandas DataFrame, one row per op occurrence: ``kind, name, phase, predicted_s,
    measured_s, kernels`` (measured = the sum of its kernels, memcpy and memset durations). Ops
    are priced in ``power`` (cost/power.py): burst by default, since a profiler capture is usually
    taken within seconds of a run's start, before the die reaches its sustained temperature."""
    import pandas as pd

    trace = _trace(source)
    if not trace.gpu:
        raise TraceError(f"{trace.path}: no GPU kernels in the trace; validation compares against CUDA "
                         "kernel times (use `simhw trace summarize` for a CPU trace).")
    a = _analysis(trace)
    graph, _ = trace_to_graph(trace, tf32=tf32)
    coster = _Coster(hw, power=power or PowerState.BURST)
    coster.use_step_clock(graph.ops)
    rows = [(op.kind.value, op.name, op.phase.value, coster(op).time_s, t.gpu_s, t.kernels)
            for op, t in zip(graph.ops, a.ops) if t.gpu_s > 0]
    return pd.DataFrame(rows, columns=["kind", "name", "phase", "predicted_s", "measured_s", "kernels"])


def ape_table(df):
    """Per kind (and "all"): ops, summed predicted and measured seconds, median and p90 of the
    absolute percentage error |predicted - measured| / measured over op occurrences."""
    import numpy as np
    import pandas as pd

    out = []
    groups = [(k, g) for k, g in df.groupby("kind", sort=True)] + [("all", df)]
    for kind, g in groups:
        g = g[g["measured_s"] > 0]
        if g.empty:
            continue
        ape = (g["predicted_s"] - g["measured_s"]).abs() / g["measured_s"]
        out.append((kind, len(g), g["predicted_s"].sum(), g["measured_s"].sum(),
                    float(np.median(ape)), float(np.percentile(ape, 90))))
    return pd.DataFrame(out, columns=["kind", "ops", "predicted_s", "measured_s", "median_ape", "p90_ape"])

