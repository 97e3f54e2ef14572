"""What :func:`simhw.cost.estimate.estimate` returns: the per-op rows, the result of one workload on
one machine (its ``simhw.estimate/1`` JSON and pandas frames), and the notes the CLI prints with it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from ..workload.spec import EngineOptions, Mode, Workload
from .memory import MemoryBreakdown
from .power import PowerState

SCHEMA = "simhw.estimate/1"
ENGINE_BOUND_SHARE = 0.5    # a serving iteration at least this much the default engine's gets a note


@dataclass(frozen=True)
class OpResult:
    name: str
    kind: str
    phase: str
    layer: int
    flops: float
    bytes: float
    intensity: float
    bound: str
    time_s: float
    energy_j: float


@dataclass(frozen=True)
class EstimateResult:
    hardware: str
    workload: str
    mode: str
    devices: int
    step_time_s: float
    total_time_s: float
    tokens_per_s: float
    model_flops: float
    hardware_flops: float
    mfu: float
    hfu: float
    energy_j: float
    avg_power_w: float
    cost_usd: float
    eflops: float
    time_breakdown_s: Mapping[str, float]
    memory: MemoryBreakdown
    ops: tuple[OpResult, ...] = field(default=())
    clock_scale: float = 1.0          # average DVFS clock while the ops run (1: no power limit)
    power: str = PowerState.STEADY.value   # the die's state under the power limit (cost/power.py)
    advisories: tuple[str, ...] = ()  # what the user should know about this estimate (the CLI's stderr)
    stage_busy_s: tuple[float, ...] = ()   # each pipeline device's work for one micro-batch (its layers, and
                                           # the embedding, output layer and MTP modules where they run)
    stage_memory_bytes: tuple[float, ...] = ()   # each pipeline device's peak memory (cost/memory.py
                                                 # device_memory_breakdowns; ``memory`` is the fullest's)

    def notes(self) -> list[str]:
        """Lines for stderr (the CLI prefixes ``simhw: ``)."""
        return list(self.advisories)

    def to_dict(self, ops: bool = False) -> dict:
        out = {k: getattr(self, k) for k in ("hardware", "workload", "mode", "devices", "step_time_s",
                                              "total_time_s", "tokens_per_s", "model_flops",
                                              "hardware_flops", "mfu", "hfu", "energy_j", "avg_power_w",
                                              "cost_usd", "eflops", "clock_scale", "power")}
        out["stage_busy_s"] = list(self.stage_busy_s)
        out["stage_memory_bytes"] = list(self.stage_memory_bytes)
        out["time_breakdown_s"] = dict(self.time_breakdown_s)
        out["memory"] = self.memory.to_dict()
        if ops:
            out["ops"] = [asdict(o) for o in self.ops]
        return out

    def to_frame(self):
        """One-row pandas DataFrame (memory parts flattened as ``memory.<part>``)."""
        import pandas as pd

        row = self.to_dict()
        for key, value in row.pop("memory").items():
            row[f"memory.{key}"] = value
        for key, value in row.pop("time_breakdown_s").items():
            row[f"time.{key}_s"] = value
        return pd.DataFrame([row])

    def ops_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(o) for o in self.ops])


def estimate_advisories(wl: Workload, hw_name: str, engine_share: float) -> tuple[str, ...]:
    """Notes for the user about an estimate: a serving iteration dominated by the spec's default
    engine (``engine_share`` of it), or training in an 8- or 4-bit dtype throughout."""
    advisories: tuple[str, ...] = ()
    if wl.mode is not Mode.TRAIN and wl.engine == EngineOptions() and engine_share >= ENGINE_BOUND_SHARE:
        advisories = (f"note: on {hw_name} the spec's default serving engine (Splitwise's eager one: per-iteration "
                      f"work and per-layer Python dispatch) takes {engine_share:.0%} of each iteration, "
                      "so the GPU hardly matters here; name the engine you run, e.g. --set engine=vllm-v1 "
                      "(docs/workloads.md lists them).",)
    if wl.mode is Mode.TRAIN and wl.dtype.bytes < 2:
        advisories += (f"note: dtype {wl.dtype.value} trains every tensor in {wl.dtype.value} (weights, gradients, "
                       "attention, norms); FP8 / FP4 training as run keeps bf16 and quantizes the linears: "
                       "--set dtype=bf16 --set precision=fp8-current (or mxfp8, nvfp4; docs/workloads.md).",)
    return advisories
