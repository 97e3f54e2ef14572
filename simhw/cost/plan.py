"""Parallelism search: the fastest (or cheapest) way to run one workload on one machine.

Calculon's ``llm-optimal-execution`` and Vidur-Search answer the same question by brute force;
so does this, with the usual estimate (cost/estimate.py) for every candidate and the memory model
(cost/memory.py) to drop what does not fit before it is costed.

Candidates keep the workload's model, batch, sequence length, device count and dtype, and vary
- tensor parallelism (powers of two up to the node's devices, 8 for a bare device spec), in training
  with sequence parallelism when tp > 1 (Megatron-LM's recommended setting, Korthikanti et al. 2022),
  its collectives overlapped with the GEMMs when asked (``tp_overlap``);
- pipeline stages (powers of two up to the layers) with the 1F1B schedule, and the interleaved one
  with two model chunks per device where the layers and micro-batches allow it, split evenly (a
  workload's ``parallelism.layout`` names one pp x interleave, so candidates drop it);
- context parallelism (2, 4, 8) for sequences of 16k tokens or more; expert parallelism (powers of
  two dividing the data-parallel ranks and the experts) for a mixture of experts;
- in serving, data-parallel attention over the tensor-parallel group (``attention_dp``) beside
  plain tensor parallelism (sequence parallelism is a training setting);
- in training, the micro-batch (1, 2, 4, 8) and, for each layout, the lightest memory setting that
  fits: ZeRO-1 without recompute, else ZeRO-2 or ZeRO-3, the light recompute or full recompute each
  way (all costed), else both; where full recompute fits, also full recompute of just enough
  layers of each model chunk (``recompute_layers``, shown as ``full N/C``) and, without a
  pipeline, no recompute with just enough layers' activations offloaded to host memory
  (``offload_layers``).

Each candidate is loaded through the workload YAML reader, so a combination it rejects (tp not
dividing the heads, a batch that does not split) is counted as invalid, never costed.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Sequence

from ..errors import SimhwError

_MICRO = (1, 2, 4, 8)
_LONG_SEQ = 16384             # context parallelism is offered from this sequence length on


class Objective(Enum):
    TIME = "time"             # device-seconds per token (for a fixed device count: the step time)
    COST = "cost"             # cloud dollars per token
    ENERGY = "energy"         # joules per token


@dataclass(frozen=True)
class Candidate:
    settings: tuple[tuple[str, Any], ...]    # (workload field as --set names it, value)
    result: Any                              # cost.estimate.EstimateResult

    def score(self, objective: Objective) -> float:
        """The objective's amount per token the step processes (cost/sweep.py per_token)."""
        from .sweep import per_token

        r = self.result
        return per_token(r, {Objective.TIME: r.step_time_s * r.devices, Objective.COST: r.cost_usd,
                             Objective.ENERGY: r.energy_j}[objective])

    def to_dict(self) -> dict:
        r = self.result
        return {"settings": dict(self.settings), "step_time_s": r.step_time_s, "tokens_per_s": r.tokens_per_s,
                "mfu": r.mfu, "peak_memory_bytes": r.memory.peak_bytes, "energy_j": r.energy_j,
                "cost_usd": r.cost_usd}


@dataclass(frozen=True)
class PlanResult:
    workload: str
    hardware: str
    objective: Objective
    ranked: tuple[Candidate, ...]            # every costed candidate that fits, best first
    layouts: int                             # parallel layouts considered
    invalid: int                             # combinations the workload reader rejected
    too_big: int                             # layouts with no memory setting that fits
    too_slow: int = 0                        # candidates that fit but miss the step-time limit

    def to_dict(self, top: int | None = None) -> dict:
        return {"schema": "simhw.plan/1", "workload": self.workload, "hardware": self.hardware,
                "objective": self.objective.value, "layouts": self.layouts, "invalid": self.invalid,
                "out_of_memory": self.too_big, "over_time_limit": self.too_slow, "costed": len(self.ranked),
                "ranked": [c.to_dict() for c in self.ranked[:top]]}


def _powers(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def layouts(wl, node_devices: int, tp_overlap: bool = False) -> list[dict[str, Any]]:
    """The parallel layouts (tp, pp, cp, ep, schedule) worth trying for ``wl`` (module docstring);
    serving pipelines run 1F1B-like, one stage after another, so only training interleaves."""
    from ..workload.spec import Mode

    m, n = wl.model, wl.devices
    train = wl.mode is Mode.TRAIN
    out = []
    long = wl.seq_len >= _LONG_SEQ and not m.recurrent_layers
    cps = [1] + ([c for c in (2, 4, 8) if wl.seq_len % c == 0] if long else [])
    for tp, pp, cp in itertools.product(_powers(min(node_devices, n)), _powers(min(n, m.layers)), cps):
        if n % (tp * pp * cp):
            continue
        dp = n // (tp * pp * cp)
        eps = [e for e in _powers(dp) if m.moe and dp % e == 0 and m.experts % e == 0] or [1]
        for ep in eps:
            sp = train and tp > 1
            base = {"parallelism.tp": tp, "parallelism.pp": pp, "parallelism.cp": cp, "parallelism.ep": ep,
                    "parallelism.sp": sp, "parallelism.tp_overlap": sp and tp_overlap,
                    "parallelism.attention_dp": False, "parallelism.dp": dp,
                    "parallelism.layout": ""}       # the even split: a layout names one pp x interleave
            out.append({**base, "parallelism.schedule": "1f1b", "parallelism.interleave": 1})
            if train and pp > 1 and m.layers >= 2 * pp:
                out.append({**base, "parallelism.schedule": "interleaved", "parallelism.interleave": 2})
            if not train and tp > 1:        # SGLang's data-parallel attention over the TP group
                out.append({**base, "parallelism.schedule": "1f1b", "parallelism.interleave": 1,
                            "parallelism.attention_dp": True})
    return out


def plan(workload_path: str, hw_name: str, overrides: Sequence[str] = (), objective: Objective | str = Objective.TIME,
         micro_batches: Sequence[int] = _MICRO, *, serving_batches: Sequence[int] = (),
         max_step_s: float | None = None, tp_overlap: bool = False) -> PlanResult:
    """Search the layouts of ``workload_path`` (with ``overrides``, as --set) on ``hw_name``.

    Serving (prefill, decode) keeps the workload's sequences per replica unless ``serving_batches``
    lists the ones to try; each replica of tp x pp devices then holds pp of them in flight (one per
    stage, as vLLM's pipelines run), so the batch in flight is micro_batch x dp x pp.
    ``max_step_s`` keeps only candidates whose step (a training step, a prefill, a decode
    iteration: the time per output token) is no longer: the throughput a latency target allows.
    ``tp_overlap``: layouts with tp > 1 overlap their tensor-parallel collectives with the GEMMs
    (``parallelism.tp_overlap``, as Megatron-LM's --tp-comm-overlap runs them)."""
    from ..spec.load import load_hw
    from ..spec.model import NodeSpec
    from ..workload.from_yaml import load_workload
    from ..workload.spec import Mode

    objective = Objective(objective)
    if str(workload_path).endswith((".json", ".json.gz")):
        raise SimhwError(f"{workload_path}: plan varies a workload YAML's parallelism; a profiler trace has none.")
    wl = load_workload(workload_path, overrides)
    hw = load_hw(hw_name)
    node_devices = hw.device_count if isinstance(hw, NodeSpec) else 8
    train = wl.mode is Mode.TRAIN
    memory_options = _memory_tiers(wl) if train else ([(None, None)],)
    micros = [b for b in micro_batches if b <= wl.global_batch] if train else list(serving_batches or [wl.micro_batch])

    def load(sets: dict):
        return load_workload(workload_path, list(overrides) + [f"{k}={_yaml(v)}" for k, v in _expand(sets).items()])

    ranked, invalid, too_big, slow, count = [], 0, 0, 0, 0
    for layout in layouts(wl, node_devices, tp_overlap):
        for micro in micros:
            count += 1
            sets = dict(layout, micro_batch=micro)
            if not train:
                sets["global_batch"] = micro * layout["parallelism.dp"] * layout["parallelism.pp"]
            status, costed = _cost_layout(sets, memory_options, load, hw)
            invalid += status == "invalid"
            too_big += status == "oom"
            slow += sum(max_step_s is not None and c.result.step_time_s > max_step_s for c in costed)
            ranked += [c for c in costed if max_step_s is None or c.result.step_time_s <= max_step_s]
    if not ranked and slow:
        raise SimhwError(f"plan: none of the {slow} layouts of {wl.name} on {hw_name} that fit in memory takes at "
                         f"most {max_step_s:g} s per step; relax the limit, add devices or choose a faster machine.")
    if not ranked:
        raise SimhwError(f"plan: none of the {count} layouts of {wl.name} on {hw_name} fits in device memory "
                         f"({invalid} rejected as invalid); add devices (--set devices=N) or choose a larger "
                         f"machine.")
    ranked.sort(key=lambda c: c.score(objective))
    return PlanResult(wl.name, hw_name, objective, tuple(ranked), count, invalid, too_big, slow)


def _cost_layout(sets: dict, memory_options, load, hw) -> tuple[str, list[Candidate]]:
    """("ok" | "invalid" | "oom", the costed candidates) of one layout: the first tier of memory
    settings with any that fits is costed, each setting of it that fits."""
    from ..cost.estimate import estimate
    from ..cost.memory import memory_breakdown

    for tier in memory_options:
        costed = []
        for zero, recompute in tier:
            chosen = dict(sets) if zero is None else dict(sets, **{"memory.zero_stage": zero,
                                                                  "memory.recompute": recompute})
            try:
                wl = load(chosen)
            except SimhwError:
                return "invalid", []
            if memory_breakdown(wl, hw).fits:
                costed.append(Candidate(tuple(chosen.items()), estimate(wl, hw)))
                if recompute == "full":
                    costed += _just_enough(sets, zero, wl, load, hw) + _just_enough_offload(sets, zero, load, hw)
        if costed:
            return "ok", costed
    return "oom", []


def _just_enough(sets: dict, zero: int, full, load, hw) -> list[Candidate]:
    """The layout with full recompute of only as many layers of each model chunk as it needs to fit
    (``recompute_layers``, Megatron's block method): the activations fall linearly with the layers
    recomputed, so two memory estimates give the count, which is then checked (and raised by one
    or two where the peak does not follow)."""
    from ..cost.estimate import estimate
    from ..cost.memory import memory_breakdown
    from ..workload.recompute import chunk_size

    top, bottom = memory_breakdown(load(dict(sets, **{"memory.zero_stage": zero, "memory.recompute": "none"})),
                                   hw), memory_breakdown(full, hw)
    chunk, cap = chunk_size(full.model.layers, full.parallelism), bottom.capacity_bytes
    if top.peak_bytes <= bottom.peak_bytes or top.fits:
        return []
    first = max(1, math.ceil(chunk * (top.peak_bytes - cap) / (top.peak_bytes - bottom.peak_bytes)))
    for n in range(first, min(first + 3, chunk)):
        value = f"full {n}/{chunk}"
        chosen = dict(sets, **{"memory.zero_stage": zero, "memory.recompute": value})
        wl = load(chosen)
        if memory_breakdown(wl, hw).fits:
            return [Candidate(tuple(chosen.items()), estimate(wl, hw))]
    return []


def _just_enough_offload(sets: dict, zero: int, load, hw) -> list[Candidate]:
    """Without a pipeline, the layout that offloads as few layers' activations to host memory as it
    needs to fit, recomputing nothing (``offload_layers``, Megatron's CPU offloading, which NVIDIA's
    GB200 recipes pick over recompute where NVLink-C2C hides the copies): each offloaded layer but
    the first frees one layer's activations, so the count follows from one memory estimate."""
    from ..cost.estimate import estimate
    from ..cost.memory import activation_bytes_per_layer, memory_breakdown

    if sets.get("parallelism.pp", 1) != 1:
        return []
    base = dict(sets, **{"memory.zero_stage": zero, "memory.recompute": "none"})
    wl = load(base)
    mem = memory_breakdown(wl, hw)
    layer = activation_bytes_per_layer(wl)
    if mem.fits or layer <= 0:
        return []
    n = math.ceil((mem.peak_bytes - mem.capacity_bytes) / layer) + 1
    if n >= wl.model.layers:
        return []
    chosen = dict(base, **{"memory.offload_layers": n})
    wl = load(chosen)
    return [Candidate(tuple(chosen.items()), estimate(wl, hw))] if memory_breakdown(wl, hw).fits else []


def _memory_tiers(wl) -> tuple[list, ...]:
    """(ZeRO stage, recompute) settings in tiers of growing saving: ZeRO-1 and no recompute; ZeRO-2
    or ZeRO-3, or ZeRO-1 with the light recompute (the norms, the experts' activation, MLA's up
    projections: what Megatron-Bridge's MoE recipes recompute; torchtitan's per-op policy in eager
    or compiled PyTorch), or full recompute; ZeRO-3 with either recompute."""
    light = light_recompute(wl)
    mid = [(2, "none"), (3, "none")] + ([(1, light)] if light else []) + [(1, "full")]
    return [(1, "none")], mid, ([(3, light)] if light else []) + [(3, "full")]


def _op_applies(wl) -> bool:
    """Whether torchtitan's per-op checkpointing (recompute: op) applies to ``wl``."""
    from ..workload.recompute import check_op
    from ..workload.spec import Recompute, replace_memory
    try:
        check_op(replace_memory(wl, recompute=Recompute.OP).memory, wl.model, wl.framework, "")
    except SimhwError:
        return False
    return True


def light_recompute(wl) -> str:
    """The cheap recompute settings that apply to ``wl``: torchtitan's per-op policy (``op``) in
    eager or compiled PyTorch where it applies, else the cheap selective modules, ``+``-joined
    ("" if none)."""
    if _op_applies(wl):
        return "op"
    from ..workload.recompute import check_modules
    from ..workload.spec import RecomputeModule as M, Recompute, replace_memory

    out = []
    for mod in (M.LAYERNORM, M.MOE_ACT, M.MLA_UP_PROJ):
        trial = replace_memory(wl, recompute=Recompute.SELECTIVE, recompute_modules=frozenset({mod}))
        try:
            check_modules(trial.memory, wl.model, wl.framework, wl.mode, "")
        except SimhwError:
            continue
        out.append(mod.value)
    return "+".join(out)


def _expand(sets: dict) -> dict:
    """A candidate's settings as workload overrides: a recompute given as modules is a selective
    one with those modules (and none / full clear any modules the workload names); every layer
    recomputes under full (recompute_layers 0)."""
    value = sets.get("memory.recompute")
    if value is None:
        return sets
    out = dict(sets, **{"memory.recompute_layers": 0, "memory.offload_layers": sets.get("memory.offload_layers", 0)})
    if value.startswith("full "):         # "full N/C": the first N layers of each C-layer chunk
        out["memory.recompute"], out["memory.recompute_modules"] = "full", "[]"
        out["memory.recompute_layers"] = int(value.split()[1].split("/")[0])
    elif value in ("none", "full", "selective", "op"):
        out["memory.recompute_modules"] = "[]"
    else:
        out["memory.recompute"], out["memory.recompute_modules"] = "selective", value
    return out


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
