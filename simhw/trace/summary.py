"""``simhw trace summarize``: what a profiler trace contains, by op kind.

Per kind: op count, FLOPs and bytes computed from the recorded shapes (ops.py), measured CPU time
(inclusive duration of the costed ops on their CPU thread) and measured GPU time (their kernels,
memcpy and memset), split by phase; the device; peak memory from ``[memory]`` events; how many
backward nodes found their forward op; and every op that could not be mapped, with its share of
the measured time; and each GPU's timeline: the span from its first record to its last, the time
some kernel, copy or memset ran (the union over streams) and the idle rest, with its longest gaps
(HTA's idle-time view: the GPU waiting on the host's launches, or on a synchronisation). All times
in seconds, per whole trace (not per step).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .cost import _analysis, _peak_memory, _trace
from .reader import RUNTIME

SCHEMA = "simhw.trace-summary/1"
LONG_GAP_US = 50            # idle gaps of at least this many microseconds are counted apart


def gpu_timeline(gpu_records, longest: int = 5, phase_of=None) -> list[dict]:
    """Per device: span, busy (union of its records' intervals over all streams) and idle seconds,
    the number and total of idle gaps of LONG_GAP_US or more, and the ``longest`` gaps with the name
    of the record that ended each. ``gpu_records``: the reader's (ts_us, dur_us, code, name, device,
    stream, correlation, ...) tuples. ``phase_of``: record -> phase name of the op that launched it
    (or None); each gap is then charged to the phase whose launch ended it (idle_by_phase_s)."""
    by_device: dict = defaultdict(list)
    for r in gpu_records:
        by_device[r[4]].append((r[0], r[0] + r[1], r[3], phase_of(r) if phase_of else None))
    out = []
    for device, recs in sorted(by_device.items(), key=lambda kv: str(kv[0])):
        recs.sort()
        start, end = recs[0][0], max(r[1] for r in recs)
        busy = 0.0
        gaps = []
        by_phase: dict = defaultdict(float)
        run_start, run_end = recs[0][0], recs[0][1]
        for lo, hi, name, phase in recs[1:]:
            if lo > run_end:
                busy += run_end - run_start
                gaps.append((lo - run_end, name))
                by_phase[phase or "unknown"] += (lo - run_end) * 1e-6
                run_start, run_end = lo, hi
            else:
                run_end = max(run_end, hi)
        busy += run_end - run_start
        long_gaps = [g for g, _ in gaps if g >= LONG_GAP_US]
        gaps.sort(key=lambda g: -g[0])
        out.append({"device": device, "span_s": (end - start) * 1e-6, "busy_s": busy * 1e-6,
                    "idle_s": (end - start - busy) * 1e-6, "gaps": len(gaps),
                    "long_gaps": len(long_gaps), "long_gaps_s": sum(long_gaps) * 1e-6,
                    "longest_gaps": [{"gap_s": g * 1e-6, "before": n} for g, n in gaps[:longest]],
                    **({"idle_by_phase_s": dict(by_phase)} if phase_of else {})})
    return out


def _launch_phase(trace, a):
    """record -> the phase (fwd, bwd, optimizer, ...) during which the host launched it: the phases'
    first ops' CPU start times bound them; a GPU record finds its launch by correlation id."""
    starts: dict = {}
    for t in a.ops:
        starts[t.phase.value] = min(starts.get(t.phase.value, t.ts_us), t.ts_us)
    bounds = sorted((ts, ph) for ph, ts in starts.items())
    launch = {r[4]: r[0] for recs in trace.threads.values() for r in recs if r[2] == RUNTIME and r[4] is not None}
    if not bounds or not launch:
        return None

    def phase_of(record):
        ts = launch.get(record[6])
        if ts is None:
            return None
        current = bounds[0][1]
        for start, ph in bounds:
            if ts >= start:
                current = ph
        return current
    return phase_of


def summarize(source) -> dict:
    """A JSON-ready summary of a trace (path or Trace); see the module docstring."""
    trace = _trace(source)
    a = _analysis(trace)
    kinds: dict = defaultdict(lambda: {"ops": 0, "flops": 0.0, "bytes": 0.0, "cpu_s": 0.0, "gpu_s": 0.0})
    phases: dict = defaultdict(lambda: {"ops": 0, "flops": 0.0, "cpu_s": 0.0, "gpu_s": 0.0})
    for t in a.ops:
        e = t.est
        k = kinds[e.kind.value]
        k["ops"] += 1
        k["flops"] += e.flops
        k["bytes"] += e.weight_bytes + e.input_bytes + e.output_bytes
        k["cpu_s"] += t.cpu_s
        k["gpu_s"] += t.gpu_s
        p = phases[t.phase.value]
        p["ops"] += 1
        p["flops"] += e.flops
        p["cpu_s"] += t.cpu_s
        p["gpu_s"] += t.gpu_s
    props = trace.device_properties
    dev = next((p for p in props if isinstance(p, dict)), {})
    return {
        "schema": SCHEMA,
        "trace": Path(trace.path).name,
        "device": trace.device_name(),
        "device_memory_bytes": dev.get("totalGlobalMem", 0),
        "device_sms": dev.get("numSms", 0),
        "world_size": trace.world_size,
        "format": "cuda" if trace.is_cuda else "cpu",
        "events": trace.events,
        "events_by_category": dict(trace.counts.most_common()),
        "record_shapes": trace.has_shapes,
        "steps": a.steps,
        "measured_cpu_s": a.total_cpu_s,
        "measured_gpu_s": a.total_gpu_s,
        "kinds": [dict(kind=k, **v) for k, v in sorted(kinds.items(), key=lambda kv: -(kv[1]["gpu_s"] or kv[1]["cpu_s"]))],
        "phases": {k: v for k, v in phases.items()},
        "gpu_timeline": gpu_timeline(trace.gpu, phase_of=_launch_phase(trace, a)),
        "peak_memory_bytes": _peak_memory(trace),
        "memory_events": len(trace.memory),
        "backward_nodes": a.bwd_nodes,
        "backward_nodes_with_forward": a.bwd_matched,
        "unmapped": [dict(name=n, count=c, share=s, reason=r) for n, c, s, r in a.unmapped_rows()],
        "warnings": list(a.warnings),
    }


def render_table(s: dict, limit: int = 15) -> str:
    """The summary as terminal text."""
    from ..report.fmt import gib, seconds, si, table

    gpu = s["measured_gpu_s"] > 0
    head = [f"{s['trace']}: {s['format'].upper()} trace on {s['device']}, {s['events']:,} events, "
            f"{s['steps']} step(s), shapes {'recorded' if s['record_shapes'] else 'NOT recorded'}",
            f"measured: CPU ops {seconds(s['measured_cpu_s'])}" + (f", GPU {seconds(s['measured_gpu_s'])}" if gpu else "")]
    if s["peak_memory_bytes"]:
        head.append(f"peak allocated memory: {gib(s['peak_memory_bytes'])} ({s['memory_events']:,} [memory] events)")
    if s["backward_nodes"]:
        head.append(f"backward nodes with their forward op: {s['backward_nodes_with_forward']} of {s['backward_nodes']}")
    for d in s.get("gpu_timeline", []):
        if d["span_s"] > 0:
            head.append(f"GPU {d['device']} timeline: {seconds(d['span_s'])} from first to last record, busy "
                        f"{seconds(d['busy_s'])}, idle {seconds(d['idle_s'])} ({d['idle_s'] / d['span_s']:.0%}) in "
                        f"{d['gaps']:,} gaps; {d['long_gaps']} of {LONG_GAP_US} us or more hold "
                        f"{seconds(d['long_gaps_s'])} (the GPU waiting on launches or a synchronisation; the "
                        f"profiler's own per-op cost lengthens host-bound gaps)")
            if d.get("idle_by_phase_s"):
                head.append("  idle by the phase whose launch ended it: " + ", ".join(
                    f"{ph} {seconds(v)}" for ph, v in sorted(d["idle_by_phase_s"].items(), key=lambda kv: -kv[1])))
    rows = []
    for k in s["kinds"]:
        row = [k["kind"], str(k["ops"]), si(k["flops"], "FLOP"), si(k["bytes"], "B"), seconds(k["cpu_s"])]
        rows.append(row + [seconds(k["gpu_s"])] if gpu else row)
    header = ["kind", "ops", "FLOPs", "bytes", "CPU time"] + (["GPU time"] if gpu else [])
    out = head + ["", table(rows, header) if rows else "(no costed ops)"]
    if s["phases"]:
        prow = [[ph, str(v["ops"]), si(v["flops"], "FLOP"), seconds(v["gpu_s"] if gpu else v["cpu_s"])]
                for ph, v in s["phases"].items()]
        out += ["", table(prow, ["phase", "ops", "FLOPs", "GPU time" if gpu else "CPU time"])]
    if s["unmapped"]:
        total = sum(u["share"] for u in s["unmapped"])
        out += ["", f"not mapped ({len(s['unmapped'])} op names, {total:.1%} of measured "
                    f"{'GPU' if gpu else 'CPU'} time):"]
        urows = [[u["name"][:60], str(u["count"]), f"{u['share']:.1%}", u["reason"]] for u in s["unmapped"][:limit]]
        out.append(table(urows, ["op", "count", "share", "why"], width=140))
        if len(s["unmapped"]) > limit:
            out.append(f"... and {len(s['unmapped']) - limit} more (--format json lists all)")
    out += [f"warning: {w}" for w in s["warnings"]]
    return "\n".join(out)
