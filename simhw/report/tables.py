"""Render estimate results as a terminal table, JSON or CSV."""
from __future__ import annotations

import csv
import io
import json

from ..cost.results import SCHEMA
from .fmt import gib, pct, seconds, si, table


def estimate_json(results, ops: bool = False) -> str:
    return json.dumps({"schema": SCHEMA, "results": [r.to_dict(ops=ops) for r in results]}, indent=2)


def estimate_csv(results) -> str:
    buf = io.StringIO()
    rows = []
    for r in results:
        d = r.to_dict()
        for k, v in d.pop("memory").items():
            d[f"memory.{k}"] = v
        for k, v in d.pop("time_breakdown_s").items():
            d[f"time.{k}_s"] = v
        d["stage_busy_s"] = "|".join(f"{v:.6g}" for v in d["stage_busy_s"])
        d["stage_memory_bytes"] = "|".join(f"{v:.6g}" for v in d["stage_memory_bytes"])
        rows.append(d)
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _busiest(busy) -> str:
    """'stage 3: 245 ms (least 201 ms)': one micro-batch's work on the busiest and the idlest device."""
    if len(busy) < 2:
        return "-"
    top = max(range(len(busy)), key=busy.__getitem__)
    return f"stage {top}: {seconds(busy[top])} (least {seconds(min(busy))})"


def _fullest(peaks) -> str:
    """'stage 7: 61.2 GiB (least 48.0 GiB)': the fullest and the emptiest pipeline device."""
    if len(peaks) < 2:
        return "-"
    top = max(range(len(peaks)), key=peaks.__getitem__)
    return f"stage {top}: {gib(peaks[top])} (least {gib(min(peaks))})"


def estimate_table(results, ops: bool = False) -> str:
    """One column per hardware; rows for time, throughput, FLOPs, memory, energy, dollars."""
    header = ["metric"] + [r.hardware for r in results]
    first = results[0]
    step_label = {"train": "step time (1 optimizer step)", "prefill": "prefill time (whole batch)",
                  "decode": "decode iteration time"}[first.mode]
    rows = [
        [step_label] + [seconds(r.step_time_s) for r in results],
    ]
    if first.mode == "decode":
        rows.append(["generation time (all new tokens)"] + [seconds(r.total_time_s) for r in results])
    rows += [
        ["throughput"] + [si(r.tokens_per_s, "tok/s") for r in results],
        ["model FLOPs / step"] + [si(r.model_flops, "FLOP") for r in results],
        ["MFU / HFU"] + [f"{pct(r.mfu)} / {pct(r.hfu)}" for r in results],
    ]
    for key in ("compute", "memory", "communication", "latency", "pipeline_bubble", "data_parallel",
                "optimizer", "engine_overhead", "offload", "power_limit"):
        if any(r.time_breakdown_s.get(key, 0) > 0 for r in results):
            rows.append([f"  time: {key.replace('_', ' ')}"] + [seconds(r.time_breakdown_s.get(key, 0.0)) for r in results])
    if any(len(r.stage_busy_s) > 1 for r in results):   # where a pipeline's layout leaves its load
        rows.append(["  busiest pipeline stage"] + [_busiest(r.stage_busy_s) for r in results])
    if any(r.clock_scale < 1.0 for r in results):
        rows.append(["  clock at the power limit"] + [f"{pct(r.clock_scale)} ({r.power})" for r in results])
    mem_rows = (("parameters", "parameters_bytes"), ("gradients", "gradients_bytes"),
                ("optimizer state", "optimizer_bytes"), ("activations", "activations_bytes"),
                ("KV cache", "kv_cache_bytes"), ("logits + loss", "logits_bytes"),
                ("activations in host memory", "host_activations_bytes"))
    for label, key in mem_rows:
        if any(getattr(r.memory, key) > 0 for r in results):
            rows.append([f"  memory: {label}"] + [gib(getattr(r.memory, key)) for r in results])
    rows.append(["memory per device (peak)"] + [gib(r.memory.peak_bytes) for r in results])
    if any(len(r.stage_memory_bytes) > 1 for r in results):   # which pipeline device is the fullest
        rows.append(["  fullest pipeline device"] + [_fullest(r.stage_memory_bytes) for r in results])
    rows.append(["fits in device memory"] + [
        f"{'yes' if r.memory.fits else 'NO'} ({gib(r.memory.capacity_bytes)})" for r in results])
    rows += [
        ["energy / step"] + [si(r.energy_j, "J") for r in results],
        ["average power (all devices)"] + [si(r.avg_power_w, "W") for r in results],
        ["cloud cost / step"] + [f"${r.cost_usd:.4g}" for r in results],
        ["Kinetics eFLOPs / step"] + [si(r.eflops, "FLOP") for r in results],
    ]
    out = [f"{first.workload} ({first.mode}, {first.devices} devices)", table(rows, header)]
    if ops:
        for r in results:
            op_rows = [[o.name, o.kind, o.phase, si(o.flops, "FLOP"), si(o.bytes, "B"),
                        f"{o.intensity:.3g}", o.bound, seconds(o.time_s)] for o in r.ops]
            out.append(f"\nops on {r.hardware}:")
            out.append(table(op_rows, ["op", "kind", "phase", "flops", "bytes", "FLOP/B", "bound", "time"]))
    return "\n".join(out)
