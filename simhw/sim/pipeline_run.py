"""Pipeline-parallel training step: per-stage F/B/W durations from the cost model, timed by the
schedules of sim/pipeline.py; peak activation memory per stage from the memory model.

A plan's recompute decisions are replayed layer by layer (sim/plan_layers.py): each stage's
backward pays its layers' recompute and holds their kept bytes for every micro-batch in flight,
which the schedule sets (seed-targets §7); the workload's own ``memory.recompute`` is the default
plan. Plans that offload activations are not simulated inside pipelines (an error says so).
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..cost.estimate import engine_costs
from ..cost.pipeline import exposed_dp_s, stage_p2p_s
from ..cost.memory import activation_bytes_per_layer, logits_bytes, memory_breakdown
from ..cost.stages import piece_activation_bytes
from ..spec.model import NodeSpec
from ..workload.spec import Mode, PipeSchedule, Workload
from .pipeline import PipelineKind, simulate_pipeline

SPLIT = {PipeSchedule.ZB_H1, PipeSchedule.V_HALF, PipeSchedule.V_MIN}


def simulate_pipeline_step(wl: Workload, hw, plan):
    from .run import SimResult, Task, layer_costs

    par = wl.parallelism
    costs = layer_costs(wl, hw)
    lps = np.array(wl.stage_layers(), dtype=float)     # layers on each device
    chunks = par.interleave if par.schedule is PipeSchedule.INTERLEAVED else 2
    # a decode step passes its one batch through the stages in turn, whatever the training schedule
    kind = PipelineKind.ONE_F_ONE_B if wl.mode is Mode.DECODE else PipelineKind(par.schedule)
    # every device runs lps layers; the embedding, the output layer and loss and the multi-token
    # prediction modules where the layout puts them (Workload.piece_devices: by default the first
    # device, the last, or the first again for a V shape, and the loss's)
    first, last, mtp_dev = wl.piece_devices()
    fwd = costs.fwd_s * lps
    # the plan's recompute (by default the workload's own) re-runs forward pieces just before each
    # layer's backward; per_mb: the activation bytes a stage keeps per micro-batch in flight
    recompute, per_mb = _stage_plan(wl, hw, plan, costs, lps)
    bwd_total = costs.bwd_s * lps + recompute
    for dev, piece_s in ((first, costs.embed_s), (last, costs.head_s), (mtp_dev, costs.mtp_s)):
        fwd[dev] += piece_s / 3
        bwd_total[dev] += 2 * piece_s / 3
    split = par.schedule in SPLIT
    wgrad = costs.wgrad_s * lps if split else np.zeros(par.pp)
    device = hw.device if isinstance(hw, NodeSpec) else hw
    # serving: the engine's host thread dispatches a stage's layers while its GPU runs them (a stage
    # takes the longer of the two) and adds its per-iteration work (cost/estimate.py, as there)
    host_wait = np.zeros(par.pp)
    fixed_s = 0.0
    if wl.mode is not Mode.TRAIN:
        engine = engine_costs(wl, device)
        host_wait = np.maximum(0.0, lps * engine.host_per_layer_s - fwd)
        fixed_s = engine.iteration_s(wl)
    p2p = stage_p2p_s(wl, hw, device)
    mb = wl.microbatches      # a multiple of pp for the interleaved schedule (workload/from_yaml.py)
    res = simulate_pipeline(kind, par.pp, mb, fwd + host_wait, bwd_total - wgrad, wgrad, p2p, chunks=chunks)
    pipe_s = res.step_time_s
    if wl.mode is Mode.DECODE:   # steady decoding: a round of every micro-batch, as cost/estimate.py
        stage = fwd + host_wait
        pipe_s = max(float(stage.sum()) + p2p, mb * (float(stage.max()) + p2p))
    mem = memory_breakdown(wl, hw)
    static = mem.parameters_bytes + mem.gradients_bytes + mem.optimizer_bytes
    # one micro-batch's output-layer inputs, MTP activations and logits where they run (training)
    pieces = np.array([piece_activation_bytes(wl, d) + (logits_bytes(wl) if d == last else 0.0)
                       for d in range(par.pp)]) if wl.mode is Mode.TRAIN else np.zeros(par.pp)
    # the activations in flight at the stage's peak, or a foreach optimizer's fp32 list (cost/memory.py)
    peak_dev = static + max(float(np.max(np.asarray(res.peak_activation_microbatches) * per_mb + pieces)),
                            mem.optimizer_transient_bytes)
    busiest = int(np.argmax(fwd + bwd_total))
    step = pipe_s + fixed_s + costs.optimizer_s + exposed_dp_s(
        costs.dp_comm_s, costs.dp_gather_s, float(fwd[busiest]), float(bwd_total[busiest]), mb, int(lps[busiest]),
        wl.memory.zero_stage)
    compute = float(fwd[busiest] + bwd_total[busiest]) * mb
    tasks = ()
    return SimResult(
        hardware=hw.name, workload=wl.name, plan=plan.name, step_time_s=step, compute_s=compute,
        exposed_transfer_s=0.0, bubble_rate=res.bubble_rate, engine_s=fixed_s + float(host_wait[busiest]) * mb,
        peak_memory_bytes=MappingProxyType({"device": peak_dev, "host": 0.0, "nvme": 0.0}),
        capacity_bytes=MappingProxyType({"device": device.main_memory.capacity_bytes}),
        utilisation=MappingProxyType({f"stage{d}": float(u) for d, u in
                                      enumerate(res.schedule.utilization()[:par.pp])}),
        memory_timeline=MappingProxyType({"device": (res.schedule.memory_time_s[0],
                                                     static + res.schedule.memory_bytes[0] * per_mb[0] / res.chunks)}),
        clock_scale=costs.clock,
        tasks=tasks or tuple(Task(f"{tp[1].kind}{tp[1].chunk}.mb{tp[1].microbatch}", f"stage{tp[0]}", float(s), float(e))
                             for tp, s, e in zip(res.task_pass, res.schedule.start_s, res.schedule.end_s) if tp))


def _stage_plan(wl: Workload, hw, plan, costs, lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recompute seconds, kept activation bytes) per stage and micro-batch under ``plan``."""
    if plan.workload_recompute or wl.mode is not Mode.TRAIN:
        return costs.recompute_s * lps, activation_bytes_per_layer(wl) * lps
    from dataclasses import replace

    from ..cost.memory import saved_tensor_bytes
    from ..errors import PlanError
    from ..workload.spec import Recompute
    from .plan_layers import layer_decision
    from .run import layer_costs

    per_class = saved_tensor_bytes(wl, recompute=Recompute.NONE)
    if wl.memory.flash_attention:
        per_class["scores"] = 0.0
    full = lambda: layer_costs(replace(wl, memory=replace(wl.memory, recompute=Recompute.FULL, recompute_layers=0)), hw).recompute_s  # noqa: E731
    layers = wl.model.layers
    rec, kept = np.zeros(len(lps)), np.zeros(len(lps))
    first = np.concatenate(([0], np.cumsum(lps)[:-1])).astype(int)
    for d, (start, count) in enumerate(zip(first, lps.astype(int))):
        for i in range(start, start + count):
            dec = layer_decision(plan, i, layers, per_class, costs.class_s, costs.recompute_s, full)
            if dec.offloaded_bytes > 0:
                raise PlanError(f"plan '{plan.name}' offloads layer {i}'s activations, which the pipeline simulation "
                                f"(pp = {wl.parallelism.pp}) does not replay; use a plan that keeps or recomputes "
                                f"(none, selective, full-recompute), or pp: 1.")
            rec[d] += dec.recompute_s
            kept[d] += dec.kept_bytes
    return rec, kept
