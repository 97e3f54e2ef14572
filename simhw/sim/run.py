"""Workload + plan -> task graph on streams -> timeline: one training step or inference pass.

Resources (streams): the device's compute stream, the H2D and D2H copy engines over PCIe, the
NVMe write and read queues, the serving engine's host thread (prefill and decode: it schedules the
iteration, then dispatches each layer before the GPU can run it), the network stream of the
data-parallel collectives and, for pipelines, the links between stages. Memory pools: device
memory, host memory (the device's share of the node's) and NVMe (the device's share of the
drives). A training step runs ``m`` micro-batches (gradient accumulation) of forward then backward
over the layers, then the optimizer step. The data-parallel collectives run a layer's share at a
time on the network stream: without ZeRO-3 each layer's gradient reduction (and ZeRO-1/2's
parameter gather) follows that layer's backward in the last micro-batch, under the backward of the
layers below; ZeRO-3 (FSDP FULL_SHARD) gathers each layer's parameters before its forward and its
backward, one layer ahead (``AG``, ``AGb``: the gathered layer takes device memory until its
compute ends), and reduce-scatters its gradients after its backward (``RS``: the layer's full
gradients take device memory until then), every micro-batch. cost/estimate.py exposed_dp_s is the
closed form of the same overlap. Per layer and saved-tensor
class the plan keeps, offloads (CPU or NVMe, a token fraction alpha) or recomputes:

- forward ``F_i`` allocates the bytes kept or awaiting offload; ``D2H_i`` moves the offloaded bytes
  (allocates host, frees device); ``NW_i`` writes them on to NVMe (allocates NVMe, frees host);
- backward: ``NR_i`` reads them back from NVMe, ``H2D_i`` prefetches them (allocates device,
  frees host) once backward is within ``prefetch_distance`` layers of layer i; ``RC_i``
  recomputes the rest on the compute stream; ``B_i`` frees the layer's activations.
A prefetch waits while device memory is full (the engine's memory rule). Op durations come from
the cost model (cost/estimate.py); copies from PCIe and drive models (devices/storage.py).
Pipelines (pp > 1) use sim/pipeline.py with F/B/W per stage from the same cost model.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..cost.comm import host_link_bytes_per_s
from ..cost.estimate import OpCoster, engine_costs
from ..cost.memory import layer_params_per_device, memory_breakdown, mtp_activation_bytes, saved_tensor_bytes
from ..errors import InfeasibleError
from ..spec.model import DeviceSpec, NodeSpec
from ..schedule.plan import Plan, validate_plan, workload_plan
from ..workload.graph import Collective, OpKind, Phase
from ..workload.spec import Mode, Recompute, Workload
from ..workload.opbuild import COLLECTIVE_BY_CODE
from ..workload.transformer import build_graph, runs_with_mtp
from .engine import Schedule, SimulationDeadlock, TaskGraphBuilder, simulate
from .plan_layers import LayerDecision, layer_decision

# Which forward ops produce each saved-tensor class (their time is the recompute cost).
PRODUCERS = {"attn_norm": ("attn_norm",),
             "qkv": ("qkv", "rope", "q_proj", "q_down", "q_norm", "q_up", "kv_down", "kv_norm", "kv_up", "q_absorb",
                     "lin_in", "lin_conv"),
             "attn_out": ("attn", "attn_gate", "lin_scan", "lin_norm"),
             "mlp_norm": ("o_absorb", "attn_out", "lin_out", "tp_attn", "residual1", "mlp_norm"), "mlp_act": ("mlp_up",),
             "mlp_mid": ("mlp_act",), "scores": ("attn",), "masks": (), "input": (),
             "moe_in": ("moe_router", "moe_gate", "moe_dispatch", "moe_a2a")}
RESOURCES = ("compute", "h2d", "d2h", "nvme_write", "nvme_read", "host", "network")


@dataclass(frozen=True)
class Task:
    name: str
    resource: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SimResult:
    hardware: str
    workload: str
    plan: str
    step_time_s: float
    compute_s: float
    exposed_transfer_s: float
    bubble_rate: float
    peak_memory_bytes: Mapping[str, float]
    capacity_bytes: Mapping[str, float]
    utilisation: Mapping[str, float]
    memory_timeline: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    tasks: tuple[Task, ...] = field(repr=False, default=())
    allocator: object = None      # sim/allocator.py AllocatorReport for the device's activations
    engine_s: float = 0.0         # serving: time the GPU waits on the engine's host thread
    clock_scale: float = 1.0      # the ops' average DVFS clock under the power limit (1: none)

    def to_dict(self) -> dict:
        return {"hardware": self.hardware, "workload": self.workload, "plan": self.plan,
                "step_time_s": self.step_time_s, "compute_s": self.compute_s,
                "exposed_transfer_s": self.exposed_transfer_s, "engine_s": self.engine_s,
                "clock_scale": self.clock_scale,
                "bubble_rate": self.bubble_rate,
                "peak_memory_bytes": dict(self.peak_memory_bytes), "capacity_bytes": dict(self.capacity_bytes),
                "utilisation": dict(self.utilisation),
                "allocator": None if self.allocator is None else {
                    "reserved_peak_bytes": self.allocator.reserved_peak_bytes,
                    "allocated_peak_bytes": self.allocator.allocated_peak_bytes,
                    "fragmentation_bytes": self.allocator.fragmentation_bytes}}


@dataclass(frozen=True)
class LayerCosts:
    """Seconds per layer (one micro-batch) and per-class producer times, from the cost model."""

    fwd_s: float
    bwd_s: float
    wgrad_s: float
    class_s: Mapping[str, float]
    head_s: float
    embed_s: float
    optimizer_s: float   # the optimizer update, once per step
    dp_comm_s: float = 0.0    # data-parallel collectives of the device's parameters, once: gradient reduce + gather
    dp_gather_s: float = 0.0  # ... their all-gather part (ZeRO-1/2: after the update; ZeRO-3: every micro-batch, twice)
    clock: float = 1.0   # average DVFS clock of the ops under the power limit (cost/power.py: power_limited)
    recompute_s: float = 0.0  # the workload's own memory.recompute, per layer (pipelines; plans bring their own)
    mtp_s: float = 0.0        # training's MTP modules' bodies, one micro-batch (their output layers and losses
                              # run with the loss: in head_s; workload/transformer.py runs_with_mtp)


def layer_costs(wl: Workload, hw) -> LayerCosts:
    """Per-layer times from the cost model, the ops at the step's power-limited clock (OpCoster):
    the mean layer (a mixture of experts' dense leading layers weigh in by their count)."""
    graph = build_graph(wl, compact=True)
    coster = OpCoster(hw, wl)
    coster.use_step_clock(graph.ops)
    fwd = bwd = wgrad = head = embed = step = dp_comm = dp_gather = recompute = mtp = 0.0
    total = limited = 0.0
    layers = wl.model.layers
    by_name: dict[str, float] = {}
    for op in graph.ops:
        cost = coster(op)
        t = cost.time_s
        total += cost.time_s * op.count
        limited += cost.power_limit_s * op.count
        share = t * op.count / layers
        if op.layer >= 0 and op.phase is Phase.FWD:
            fwd += share
            base = op.name.split(".")[0]
            by_name[base] = by_name.get(base, 0.0) + share
        elif op.layer >= 0 and op.phase is Phase.RECOMPUTE:
            recompute += share
        elif op.layer >= 0 and op.phase is Phase.BWD:
            bwd += share
            if op.name.endswith(".wgrad"):
                wgrad += share
        elif op.layer < 0 and op.phase is Phase.OPTIMIZER and op.kind is OpKind.COLLECTIVE:
            dp_comm += t * op.count
            if COLLECTIVE_BY_CODE[int(op.shape["collective"])] is Collective.ALL_GATHER:
                dp_gather += t * op.count
        elif op.layer < 0 and op.phase is Phase.OPTIMIZER:
            step += t * op.count
        elif op.layer < 0 and op.kind is OpKind.EMBEDDING:
            embed += t
        elif runs_with_mtp(op):
            mtp += t
        elif op.layer < 0:
            head += t
    classes = {c: sum(by_name.get(p, 0.0) for p in ops) for c, ops in PRODUCERS.items()}
    return LayerCosts(fwd, bwd, wgrad, MappingProxyType(classes), head, embed, step, dp_comm, dp_gather,
                      (total - limited) / total if total > 0 else 1.0, recompute, mtp)


def memory_pools(hw, wl: Workload, device_memory_bytes, host_memory_bytes):
    device = hw.device if isinstance(hw, NodeSpec) else hw
    dev = device_memory_bytes or device.main_memory.capacity_bytes
    if isinstance(hw, NodeSpec):
        host = host_memory_bytes or (hw.host_memory_bytes / hw.device_count if hw.host_memory_bytes else float("inf"))
        nvme = sum(d.main_memory.capacity_bytes for d in hw.drives) * hw.drive_count / max(len(hw.drives), 1) / hw.device_count \
            if hw.drives else 0.0
    else:
        host, nvme = host_memory_bytes or float("inf"), 0.0
    return dev, host, nvme


def simulate_step(wl: Workload, hw: DeviceSpec | NodeSpec, plan: Plan | None = None, *, pinned: bool = True,
                  device_memory_bytes: float | None = None, host_memory_bytes: float | None = None,
                  keep_tasks: bool = True) -> SimResult:
    """Simulate one training step (or one inference pass) of ``wl`` on ``hw`` under ``plan``
    (default: the workload's own memory.recompute, schedule/plan.py workload_plan).

    Power limit: every op runs at the DVFS clock its own draw allows (layer_costs through the cost
    model's OpCoster: power_limited); ``clock_scale`` is the ops' average clock."""
    plan = plan or workload_plan(wl)
    m = wl.model
    validate_plan(plan, m.layers)
    if wl.parallelism.pp > 1:
        from .pipeline_run import simulate_pipeline_step
        return simulate_pipeline_step(wl, hw, plan)
    costs = layer_costs(wl, hw)
    dev_cap, host_cap, nvme_cap = memory_pools(hw, wl, device_memory_bytes, host_memory_bytes)
    mem = memory_breakdown(wl, hw)
    static = mem.parameters_bytes + mem.gradients_bytes + mem.optimizer_bytes + mem.kv_cache_bytes
    if static > dev_cap:
        raise InfeasibleError(f"parameters, gradients and optimizer state need {static / 2**30:.1f} GiB but the device "
                              f"has {dev_cap / 2**30:.1f} GiB; add devices, ZeRO or tensor parallelism.")
    b = TaskGraphBuilder(n_resources=len(RESOURCES), pool_capacity_bytes=[dev_cap, host_cap, nvme_cap or 1.0],
                         pool_initial_bytes=[static, 0.0, 0.0])
    DEV, HOST, NVME = 0, 1, 2
    C, H2D, D2H, NW, NR, CPU, NET = range(7)
    device = hw.device if isinstance(hw, NodeSpec) else hw
    # pageable host memory is staged through a pinned bounce buffer (CUDA C++ Best Practices Guide,
    # "Pinned Memory"); the spec's pageable_copy_fraction says how much slower that is
    pcie = host_link_bytes_per_s(hw) * (1.0 if pinned else device.efficiency.pageable_copy_fraction)
    drive = hw.drives[0] if isinstance(hw, NodeSpec) and hw.drives else None
    drives_per_device = (hw.drive_count / hw.device_count) if drive is not None else 0
    names: list[tuple[str, int]] = []
    train = wl.mode is Mode.TRAIN
    # saved bytes per class as the workload would keep them without recompute (the plan decides),
    # or, under the workload's own plan, as its own recompute leaves them
    per_class = saved_tensor_bytes(wl) if train and plan.workload_recompute else \
        saved_tensor_bytes(wl, recompute=Recompute.NONE if train else Recompute.FULL)
    if wl.memory.flash_attention:
        per_class["scores"] = 0.0

    blocks: dict[int, tuple[list, list]] = {}     # task -> (device blocks allocated, device blocks freed)

    def add(name, dur, res, deps=(), alloc=None, free=None, prio=0, blocks_in=(), blocks_out=()):
        names.append((name, res))
        task = b.add(dur, res, [d for d in deps if d is not None], prio, alloc, free)
        if blocks_in or blocks_out:
            blocks[task] = ([(k, v) for k, v in blocks_in if v > 0], list(blocks_out))
        return task

    prev = None
    mbs = wl.microbatches      # serving: one iteration of every micro-batch, one after another
    L = m.layers
    # data-parallel collectives on the network stream, a layer's share at a time (cost/estimate.py:
    # exposed_dp_s): ZeRO-3 gathers each layer's parameters before its forward and its backward
    # (prefetched one layer ahead: two layers' gathered parameters at most) and reduce-scatters
    # its gradients after its backward, every micro-batch; otherwise each layer's gradients reduce
    # after the last micro-batch's backward of that layer
    zero3 = train and wl.memory.zero_stage >= 3 and costs.dp_gather_s > 0
    gather_l = costs.dp_gather_s / L if zero3 else 0.0
    zero2_rs_l = (costs.dp_comm_s - costs.dp_gather_s) / L if train and wl.memory.zero_stage == 2 else 0.0
    reduce_l = (costs.dp_comm_s - costs.dp_gather_s) / L if zero3 else costs.dp_comm_s / L if train else 0.0
    layer_param_bytes = layer_params_per_device(wl) * wl.dtype.bytes if zero3 else 0.0
    dp_ids: list[int] = []
    logits = mem.logits_bytes
    head_bytes = logits + mtp_activation_bytes(wl)     # training's multi-token prediction modules run with the head
    # serving: the engine's host thread schedules the iteration, then dispatches the layers one by
    # one while the GPU runs them (cost/estimate.py: step overhead + max(GPU, layers x host) + one link + per sequence)
    engine = engine_costs(wl, device)

    @functools.cache
    def full_recompute_s() -> float:
        return layer_costs(replace(wl, memory=replace(wl.memory, recompute=Recompute.FULL, recompute_layers=0)), hw).recompute_s

    dispatch = None
    if not train:
        dispatch = add("engine", engine.iteration_s(wl), CPU, [prev])
    due = copy_deadlines(plan, L)
    due_at = {layer: at for at, layers in due.items() for layer in layers}
    for mb in range(mbs):
        fwd_ids, d2h_ids, nw_ids, layer_bytes = [], [], [], []
        emb = add(f"embed.mb{mb}", costs.embed_s, C, [prev, dispatch])
        last = emb
        for i in range(L):
            if dispatch is not None:
                dispatch = add(f"dispatch{i}", engine.host_per_layer_s, CPU, [dispatch])
            if train:
                dec = layer_decision(plan, i, L, per_class, costs.class_s, costs.recompute_s, full_recompute_s)
            else:
                dec = LayerDecision()
            kept, off_cpu, off_nvme = dec.kept_bytes, dec.cpu_bytes, dec.nvme_bytes
            recomp_s, recomp_bytes = dec.recompute_s, dec.recompute_bytes
            gather = add(f"AG{i}.mb{mb}", gather_l, NET, [fwd_ids[i - 2] if i >= 2 else prev],
                         alloc=(DEV, layer_param_bytes)) if zero3 else None
            waits = [d2h_ids[k] for k in due.get(i, ())]        # copies due before this layer runs
            f = add(f"F{i}.mb{mb}", costs.fwd_s, C, [last, dispatch, gather, *waits], alloc=(DEV, kept + off_cpu + off_nvme),
                    free=(DEV, layer_param_bytes) if zero3 else None,
                    blocks_in=[(f"keep{i}.{mb}", kept), (f"off{i}.{mb}", off_cpu + off_nvme)])
            last = f
            off = off_cpu + off_nvme
            d2h = add(f"D2H{i}.mb{mb}", off / pcie, D2H, [f], alloc=(HOST, off), free=(DEV, off),
                      blocks_out=[f"off{i}.{mb}"]) if off > 0 else None
            nw = None
            if off_nvme > 0:
                if drive is None:
                    raise InfeasibleError(f"plan '{plan.name}' offloads to NVMe but {hw.name} has no drives; "
                                          f"use a node spec with drives (e.g. dgx-a100).")
                from ..devices.storage import IoDir, transfer_time_s
                nw = add(f"NVMeW{i}.mb{mb}", transfer_time_s(drive, off_nvme, direction=IoDir.WRITE, drives=drives_per_device),
                         NW, [d2h], alloc=(NVME, off_nvme), free=(HOST, off_nvme))
            fwd_ids.append(f); d2h_ids.append(d2h); nw_ids.append(nw)
            layer_bytes.append((kept, off_cpu, off_nvme, recomp_s, recomp_bytes))
        if not train:
            prev = add(f"head.mb{mb}", costs.head_s, C, [last], alloc=(DEV, logits), free=(DEV, logits))
            continue
        head = add(f"head.mb{mb}", costs.head_s + costs.mtp_s, C, [last], alloc=(DEV, head_bytes), free=(DEV, head_bytes))
        bwd_ids: dict[int, int] = {}
        last = head
        for i in reversed(range(L)):
            kept, off_cpu, off_nvme, recomp_s, recomp_bytes = layer_bytes[i]
            ahead = due_at.get(i, i + plan.prefetch_distance) + 1     # TE: reloaded as backward reaches its window
            gate = bwd_ids.get(ahead) if ahead < L else head
            h2d = None
            if off_nvme > 0:
                from ..devices.storage import IoDir, transfer_time_s
                nr = add(f"NVMeR{i}.mb{mb}", transfer_time_s(drive, off_nvme, drives=drives_per_device), NR,
                         [nw_ids[i], gate], alloc=(HOST, off_nvme), free=(NVME, off_nvme))
                h2d_deps = [nr, d2h_ids[i]]
            else:
                h2d_deps = [d2h_ids[i], gate]
            off = off_cpu + off_nvme
            if off > 0:
                h2d = add(f"H2D{i}.mb{mb}", off / pcie, H2D, h2d_deps, alloc=(DEV, off), free=(HOST, off),
                          blocks_in=[(f"back{i}.{mb}", off)])
            rc = add(f"RC{i}.mb{mb}", recomp_s, C, [last], alloc=(DEV, recomp_bytes),
                     blocks_in=[(f"rc{i}.{mb}", recomp_bytes)]) if recomp_s > 0 or recomp_bytes > 0 else None
            gather = add(f"AGb{i}.mb{mb}", gather_l, NET, [bwd_ids.get(i + 2, head)],
                         alloc=(DEV, layer_param_bytes)) if zero3 else None
            # the layer's full gradients live until reduce-scattered (ZeRO-3)
            bw = add(f"B{i}.mb{mb}", costs.bwd_s, C, [rc or last, h2d, gather],
                     alloc=(DEV, layer_param_bytes) if zero3 else None,
                     free=(DEV, kept + off + recomp_bytes + layer_param_bytes),
                     blocks_out=[f"keep{i}.{mb}", f"back{i}.{mb}", f"rc{i}.{mb}"])
            bwd_ids[i] = bw
            last = bw
            if reduce_l > 0 and (zero3 or mb == mbs - 1):
                dp_ids.append(add(f"RS{i}.mb{mb}" if zero3 else f"DP{i}", reduce_l, NET, [bw], prio=1,
                                  free=(DEV, layer_param_bytes) if zero3 else None))
            elif zero2_rs_l > 0:      # ZeRO-2: each micro-batch's gradients reduce-scattered under its backward
                dp_ids.append(add(f"RS{i}.mb{mb}", zero2_rs_l, NET, [bw], prio=1))
        prev = add(f"embed_bwd.mb{mb}", costs.embed_s, C, [last])
    if train:   # a foreach optimizer holds its temporary fp32 list while it runs (cost/memory.py)
        transient = mem.optimizer_transient_bytes
        add("optimizer", costs.optimizer_s, C, [prev, *dp_ids], alloc=(DEV, transient) if transient else None,
            free=(DEV, transient) if transient else None)
    graph = b.build()
    try:
        sched: Schedule = simulate(graph)
    except SimulationDeadlock as exc:
        pool = ("device", "host", "NVMe")[exc.pool]
        cap = (dev_cap, host_cap, nvme_cap)[exc.pool]
        raise SimulationDeadlock(
            f"plan '{plan.name}' does not fit: {names[exc.task][0]} needs "
            f"{graph.alloc_bytes[exc.task] / 2**30:.2f} GiB of {pool} memory while {exc.used_bytes / 2**30:.2f} "
            f"of {cap / 2**30:.2f} GiB are held; offload or recompute more, or raise the {pool} memory.") from None
    compute = float(sched.busy_s[C])
    alloc_report = _caching_allocator(blocks, sched)
    tasks = tuple(Task(n, RESOURCES[r], float(s), float(e)) for (n, r), s, e in
                  zip(names, sched.start_s, sched.end_s)) if keep_tasks else ()
    pools = ("device", "host", "nvme")
    return SimResult(
        hardware=hw.name, workload=wl.name, plan=plan.name, step_time_s=sched.makespan_s, compute_s=compute,
        exposed_transfer_s=max(0.0, sched.makespan_s - compute) if train else 0.0, bubble_rate=0.0,
        engine_s=0.0 if train else max(0.0, sched.makespan_s - compute),
        peak_memory_bytes=MappingProxyType({p: float(v) for p, v in zip(pools, sched.peak_bytes)}),
        capacity_bytes=MappingProxyType({"device": dev_cap, "host": host_cap, "nvme": nvme_cap}),
        utilisation=MappingProxyType({r: float(u) for r, u in zip(RESOURCES, sched.utilization())}),
        allocator=alloc_report,
        memory_timeline=MappingProxyType({p: (t, v) for p, t, v in zip(pools, sched.memory_time_s, sched.memory_bytes)}),
        tasks=tasks, clock_scale=costs.clock)


def copy_deadlines(plan: Plan, layers: int) -> dict[int, tuple[int, ...]]:
    """{layer: the offloaded layers whose copies must be done before its forward} under a plan with
    copy_deadlines (Transformer Engine's layer_window_map: the k-th of n offloaded layers by layer
    (k + 1) L / n); empty otherwise."""
    if not plan.copy_deadlines:
        return {}
    off = sorted(plan.layers)
    out: dict[int, tuple[int, ...]] = {}
    for k, layer in enumerate(off):
        at = min(layers - 1, max(layer + 1, (k + 1) * layers // len(off)))
        out[at] = out.get(at, ()) + (layer,)
    return out


def layer_offload_times(wl: Workload, hw) -> tuple[float, float]:
    """(forward seconds of one layer, seconds to copy all its saved activations to the host).

    Offloading a layer hides behind its own forward when the second is not larger (MEMO §1,
    Fig. 1b). Activations as Korthikanti's breakdown without recompute; host link as in the spec.
    """
    costs = layer_costs(wl, hw)
    per_class = saved_tensor_bytes(wl, recompute=Recompute.NONE)
    if wl.memory.flash_attention:
        per_class["scores"] = 0.0
    return costs.fwd_s, sum(per_class.values()) / host_link_bytes_per_s(hw)


def _caching_allocator(blocks, sched: Schedule):
    """Replay the device's activation blocks through the caching-allocator model (sim/allocator.py):
    allocations at task starts, frees at task ends, frees first at equal times."""
    from .allocator import simulate_allocator

    events = []
    for task, (ins, outs) in blocks.items():
        for key, nbytes in ins:
            events.append((float(sched.start_s[task]), 1, task, ("alloc", key, int(nbytes))))
        for key in outs:
            events.append((float(sched.end_s[task]), 0, task, ("free", key)))
    events.sort(key=lambda e: e[:3])
    live: set = set()
    ordered = []
    for _, _, _, ev in events:
        if ev[0] == "alloc":
            live.add(ev[1])
            ordered.append(ev)
        elif ev[1] in live:
            live.discard(ev[1])
            ordered.append(ev)
    return simulate_allocator(ordered) if ordered else None
