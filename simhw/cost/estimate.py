"""Step totals: time, throughput, FLOPs, MFU/HFU, energy, power, dollars, memory, per-op costs.

Pipeline step time (Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU
Clusters", §2.2): with m micro-batches and p stages of time T per micro-batch (forward + backward),
1F1B and GPipe take (m + p - 1)·T; interleaving with v chunks (m + (p - 1)/v)·T; ZB-H1, V-Half
and V-Min shrink the bubble to 1/3, 1/2 and 2/3 of 1F1B's (Qi et al. 2024, seed-targets §7a). With
unequal stages (the first holds the embedding, the last the output layer and loss) the m slots run
at the slowest stage and the fill and drain at the mean of the others (cost/pipeline.py).
The data-parallel gradient reduction overlaps the last micro-batch's backward; what is left is
exposed. ZeRO-3 (FSDP FULL_SHARD) keeps parameters sharded: every micro-batch all-gathers them layer
by layer before its forward and again before its backward, and reduce-scatters its gradients, each
layer's gather prefetched under the previous layer's compute (Rajbhandari et al. 2020 §5.3; Zhao
et al. 2023, PyTorch FSDP §3.3): per micro-batch the part of the forward gathers the forward does not
cover, of the backward gathers and reductions the backward does not cover, plus one layer's gather and
reduction that nothing hides. MFU and HFU: Korthikanti et al. 2022 App. A (model FLOPs / (time x devices x peak)); model FLOPs
count matrix multiplications (the full s x s attention matrix for unfused attention, as the paper,
the causal half under FlashAttention); hardware FLOPs are model FLOPs plus recomputation.
Serving (prefill, decode): an iteration adds the engine's overheads, ``step_overhead + per_worker x
(TP x PP - 1) + per_sequence x sequences``, and each stage takes ``max(GPU time, layers x
host_per_layer)``: the host dispatches layers while the GPU runs them (workload/engines.py); the
iteration also pays one link of the faster chain, min(host_per_layer, GPU time of a layer).
Energy: dynamic per-FLOP and per-byte energy of every op (a main-memory byte costs the memory's
access energy plus the on-chip transport to the SMs) plus the static draw of a running device
(power.idle + power.active) x step time for every device, host-side engine gaps included (and the
node's host power when a node is given). Fitted on A100 serving energy (validate/REPORT.md).
Power limit: the step's ops run at the one DVFS clock at which their average draw fits power.tdp
(cost/power.py step_clock: the controller averages over milliseconds, longer than the kernels);
the time this adds is power_limit in the breakdown. Training takes the die at its sustained
temperature (PowerState.STEADY: FLOPs at energy.hot_flop_factor times their energy), serving near
the temperature of its lower average draw (BURST), unless told otherwise (default_power). A power
cap is a spec with a lower tdp.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ..spec.model import DeviceSpec, NodeSpec
from ..workload.graph import Collective, Graph, LinkScope, Op, OpKind, Phase
from ..workload.spec import AllReduceKernel, Mode, Workload
from ..workload.opbuild import COLLECTIVE_BY_CODE, SCOPE_BY_CODE
from ..workload.precision import check_precision_support
from ..workload.transformer import build_graph, runs_with_mtp
from .comm import (collective_time_s, engine_all_reduce_time_s, group_link, host_link_bytes_per_s, host_link_j_per_byte,
                   pick_link)
from .intensity import plain_intensity
from .kinetics import eflops as kinetics_eflops
from .memory import device_memory_breakdowns, offloaded_activation_bytes
from .pipeline import exposed_dp_s, pipeline_time_s, stage_p2p_s
from .power import PowerState, power_limited, step_clock
from .results import EstimateResult, OpResult, estimate_advisories  # noqa: F401 (EstimateResult re-exported)
from .roofline import Bound, OpCost, op_cost

class OpCoster:
    """Costs ops on a device, memoised on the op's signature (layers repeat the same shapes), each
    at the DVFS clock of the power limit in ``power`` (cost/power.py): the clock of its own draw,
    or after :meth:`use_step_clock` the one clock of a whole step's mix."""

    def __init__(self, hw: DeviceSpec | NodeSpec, wl: Workload | None = None,
                 power: PowerState | None = None):
        self.hw = hw
        self.device = hw.device if isinstance(hw, NodeSpec) else hw
        self.wl = wl
        if wl is not None:
            check_precision_support(wl.precision, self.device)
        self.power = power or (default_power(wl) if wl is not None else PowerState.STEADY)
        self.clock: float | None = None
        self.held_s: float | None = None     # how long a BURST step holds the board at its limit
        self._full: dict = {}
        self._cache: dict = {}

    def use_step_clock(self, ops, microbatches: int | None = None) -> float:
        """Run every op at the one clock that holds ``ops`` (a step, each op ``count`` times, the
        ops outside the optimizer phase once per each of ``microbatches`` micro-batches: by default
        the training workload's, since the optimizer runs once a step and the micro-batch graph
        that many times) at power.tdp on average (power.step_clock); returns it. A BURST step that
        runs at the limit warms the die while it lasts (power.hot_factor): the clock is found again
        for a burst as long as the step's kernels at the first clock (a prefill of seconds runs
        warmer than one of milliseconds)."""
        ops = list(ops)
        if microbatches is None:
            train = self.wl is not None and self.wl.mode is Mode.TRAIN
            microbatches = self.wl.microbatches if train else 1
        per_step = [op.count * (1 if op.phase is Phase.OPTIMIZER else microbatches) for op in ops]
        costs = [(self.full(op), n) for op, n in zip(ops, per_step)]
        self.held_s = None
        self.clock = step_clock(costs, self.device, self.power)
        if self.power is PowerState.BURST and self.clock < 1.0 and self.device.hot_time_constant_s > 0:
            self._cache.clear()
            self.held_s = sum(self(op).time_s * n for op, n in zip(ops, per_step)
                              if self.full(op).bound is not Bound.COMMUNICATION)
            self.clock = step_clock(costs, self.device, self.power, self.held_s)
        self._cache.clear()
        return self.clock

    def comm_time(self, op: Op) -> float:
        """A collective's time; an inter-node group's ranks sit ``stride x tp x cp`` devices apart
        (stride 1 for data parallelism, ep for an expert's replicas; or the shape's ``inner``: tp for a
        context-parallel group), ``device_count / (stride x tp x cp)`` of them on each node
        (comm.group_link)."""
        s = op.shape
        kind = COLLECTIVE_BY_CODE[int(s["collective"])]
        ranks = int(s["ranks"])
        scope = SCOPE_BY_CODE[int(s.get("scope", 0))]
        par = self.wl.parallelism if self.wl is not None else None
        inner = 1 if scope is LinkScope.INTRA or par is None else \
            int(s["inner"]) if "inner" in s else par.tp * par.cp * int(s.get("stride", 1))
        node = getattr(self.hw, "device_count", ranks * inner)
        if ranks * inner <= node:      # the whole group sits in one node
            link = pick_link(self.hw, LinkScope.INTRA, ranks)
            if (kind is Collective.ALL_REDUCE and self.wl is not None and self.wl.mode is not Mode.TRAIN
                    and self.wl.engine.all_reduce is AllReduceKernel.CUSTOM):     # the serving engine's own kernel
                return engine_all_reduce_time_s(s["bytes"], ranks, link, self.device)
            return collective_time_s(kind, s["bytes"], ranks, link, self.device)
        per_node = max(1, node // inner)   # the group's members on one node (rank stride = tp x cp)
        # every device of a node runs its own group's collective at the same time (the data- or
        # expert-parallel groups of a step reduce together), sharing the node's NICs
        link = group_link(self.hw, ranks, per_node, kind, active_per_node=node)
        return collective_time_s(kind, s["bytes"], ranks, link, self.device, ranks_per_node=per_node)

    def __call__(self, op: Op) -> OpCost:
        key = _key(op)
        cost = self._cache.get(key)
        if cost is None:
            cost = self.full(op)
            if cost.bound is not Bound.COMMUNICATION:      # collectives and host copies: links
                cost = power_limited(cost, self.device, self.power, self.clock, self.held_s)
            self._cache[key] = cost
        return cost

    def full(self, op: Op) -> OpCost:
        """``op`` at full clock (memoised)."""
        key = _key(op)
        cost = self._full.get(key)
        if cost is None:
            cost = self._full[key] = self._cost(op)
        return cost

    def _cost(self, op: Op) -> OpCost:
        return op_cost(op, self.device, self.comm_time)


def default_power(wl: Workload) -> PowerState:
    """The die's state a workload runs in when none is asked for. Training holds the board at its
    limit for hours: the die at its sustained temperature (STEADY). Serving alternates prefills
    with memory-bound decode steps far under the limit, so a prefill finds the die near the
    temperature of that lower average draw: priced as BURST (the A100 serving rows, Splitwise's
    prefills included, fit at the burst-level energy per FLOP)."""
    return PowerState.STEADY if wl.mode is Mode.TRAIN else PowerState.BURST


def _key(op: Op) -> tuple:
    return (op.kind, op.dtype, op.flops, op.weight_bytes, op.input_bytes, op.output_bytes, tuple(op.shape.items()),
            op.phase is Phase.BWD)     # a backward attention kernel runs at its own rate (cost/roofline.py)


def _stage_of(op: Op, device_of: tuple[int, ...], pieces: tuple[int, int, int]) -> int:
    """The pipeline device that runs ``op``: ``device_of`` each layer's (Workload.device_layers),
    the embedding's, the output layer's and the multi-token prediction modules' by
    Workload.piece_devices."""
    if op.layer >= 0:
        return device_of[op.layer]
    if op.kind is OpKind.EMBEDDING:
        return pieces[0]
    return pieces[2] if runs_with_mtp(op) else pieces[1]


@dataclass(frozen=True)
class EngineCosts:
    """A serving engine's costs for one iteration of ``wl`` (seconds): the fixed part (step overhead
    plus per_worker x the other workers), per sequence, and the host's dispatch per layer."""

    step_s: float
    per_sequence_s: float
    host_per_layer_s: float

    def iteration_s(self, wl: Workload) -> float:
        """The engine's own work per iteration of ``wl``: the fixed part plus per sequence, over the
        sequences of every micro-batch the iteration serves (decode: times its samples)."""
        seqs = wl.micro_batch * wl.microbatches * (wl.decode.samples if wl.mode is Mode.DECODE else 1)
        return self.step_s + self.per_sequence_s * seqs


def engine_costs(wl: Workload, device: DeviceSpec) -> EngineCosts:
    """The workload's engine: block over the spec's engine_* constants (workload/engines.py)."""
    eff, e, par = device.efficiency, wl.engine, wl.parallelism
    pick = lambda mine, spec: spec if mine is None else mine  # noqa: E731
    worker = pick(e.per_worker_s, eff.engine_per_worker_s)
    return EngineCosts(pick(e.step_overhead_s, eff.engine_step_overhead_s) + worker * (par.tp * par.pp - 1),
                       pick(e.per_sequence_s, eff.engine_per_token_s),
                       pick(e.host_per_layer_s, eff.engine_host_per_layer_s))


def hosts_power_w(hw: DeviceSpec | NodeSpec, devices: int) -> float:
    """Draw of the hosts (CPUs, fans, NICs) of the nodes ``devices`` devices occupy; 0 for a bare
    device spec. Charged over the whole step, as the devices' static draw is."""
    if not isinstance(hw, NodeSpec):
        return 0.0
    return hw.host_power_w * -(-devices // hw.device_count)


def offload_exposed_s(wl: Workload, hw: DeviceSpec | NodeSpec, fwd_s: float, bwd_s: float) -> float:
    """Seconds per micro-batch that activation offloading (memory.offload_layers) adds. Transformer
    Engine's CPU offload context copies the first n layers' activations to the host on a stream of
    its own, one after another, each due by a later layer spread evenly over the forward
    (``layer_window_map``: n copies over L layers), and brings them back as evenly ahead of backward;
    so each copy hides behind L / n layers' work (``fwd_s`` / ``bwd_s`` of the stage over its
    layers) and shows by what it takes beyond. Copies at host_link_bytes_per_s."""
    host = offloaded_activation_bytes(wl)
    if not host:
        return 0.0
    n = wl.memory.offload_layers
    copy = host / n / host_link_bytes_per_s(hw)     # L / n layers' work is fwd_s / n
    return n * (max(0.0, copy - fwd_s / n) + max(0.0, copy - bwd_s / n))


def estimate(workload: Workload, hw: DeviceSpec | NodeSpec, *, ops: bool = False,
             graph: Graph | None = None, power: PowerState | None = None) -> EstimateResult:
    """Cost ``workload`` on ``hw`` (a device spec or a node spec). See the module docstring;
    ``power``: the die's thermal state under the power limit (cost/power.py); default_power by
    the workload's mode when None."""
    wl = workload
    par = wl.parallelism
    graph = graph or build_graph(wl, compact=not ops)
    coster = OpCoster(hw, wl, power)
    coster.use_step_clock(graph.ops)
    power = coster.power
    device = coster.device
    p = par.pp
    held = wl.device_layers()
    per_stage = tuple(len(d) for d in held)
    device_of = tuple(dev for layer, dev in sorted((i, d) for d, ids in enumerate(held) for i in ids))
    pieces = wl.piece_devices()
    stage_busy = [0.0] * p
    stage_bound = [{b: 0.0 for b in Bound} for _ in range(p)]
    stage_power = [0.0] * p           # time the power limit adds to each stage's ops
    power_s = ops_s = 0.0             # ... to all ops, and all ops' time (for the average clock)
    step_ops_s = 0.0
    step_bound = {b: 0.0 for b in Bound}
    dp_comm_s = dp_gather_s = 0.0
    dyn_mb_j = dyn_step_j = 0.0
    fwd_flops = hw_flops = mem_bytes = 0.0
    bwd_last_stage = [0.0] * p
    fwd_stage = [0.0] * p
    wgrad_stage = [0.0] * p           # weight-gradient GEMMs: the W passes of split-backward schedules
    op_rows: list[OpResult] = []
    for op in graph.ops:
        cost = coster(op)
        t = cost.time_s * op.count
        limit = cost.power_limit_s * op.count
        power_s += limit
        ops_s += t
        if op.phase is Phase.OPTIMIZER:
            if op.kind is OpKind.COLLECTIVE:
                dp_comm_s += t
                if COLLECTIVE_BY_CODE[int(op.shape["collective"])] is Collective.ALL_GATHER:
                    dp_gather_s += t
            else:
                step_ops_s += t
                step_bound[cost.bound] += t
            dyn_step_j += cost.energy_j * op.count
        else:
            st = _stage_of(op, device_of, pieces)
            stage_busy[st] += t
            stage_bound[st][cost.bound] += t - limit
            stage_power[st] += limit
            if op.phase is Phase.FWD:
                fwd_stage[st] += t
            else:
                bwd_last_stage[st] += t
                if op.name.endswith(".wgrad"):
                    wgrad_stage[st] += t
            dyn_mb_j += cost.energy_j * op.count
            fwd_flops += (op.mflops if op.phase is not Phase.RECOMPUTE else 0.0) * op.count
            hw_flops += op.mflops * op.count
            mem_bytes += op.bytes * op.count
        if ops:
            op_rows.append(OpResult(op.name, op.kind.value, op.phase.value, op.layer, op.flops, op.bytes,
                                    plain_intensity(op), cost.bound.value, t, cost.energy_j * op.count))
    gpu_busy = stage_busy
    engine = engine_costs(wl, device)
    dispatch_fill = 0.0
    if wl.mode is not Mode.TRAIN:   # a serving engine's host dispatch of a stage's layers overlaps its GPU work
        stage_busy = [max(b, n * engine.host_per_layer_s) for b, n in zip(stage_busy, per_stage)]
        # a layer starts once dispatched and once the layer before it ends, so an iteration also
        # pays one link of the faster chain: the first layer's dispatch, or the last layer's work
        dispatch_fill = min(engine.host_per_layer_s, gpu_busy[0] / per_stage[0])
    crit = max(range(p), key=lambda i: stage_busy[i])
    stage_t = stage_busy[crit]
    fill_t = (sum(stage_busy) - stage_t) / (p - 1) if p > 1 else stage_t   # the other stages' mean
    if p > 1:  # activations (forward) and their gradients (backward) cross each stage boundary
        p2p_s = stage_p2p_s(wl, hw, device)
        stage_t += (2 if wl.mode is Mode.TRAIN else 1) * p2p_s
        fill_t += (2 if wl.mode is Mode.TRAIN else 1) * p2p_s
        stage_bound[crit][Bound.COMMUNICATION] += (2 if wl.mode is Mode.TRAIN else 1) * p2p_s
    tokens_global = wl.global_batch * wl.seq_len
    engine_s = exposed_dp = offload_s = 0.0
    if wl.mode is Mode.DECODE:
        mb = 1
        # one iteration of every micro-batch: each passes the stages in turn, and with more
        # micro-batches than stages the busiest stage serves them one after another
        one_pass = sum(stage_busy) + (stage_t - stage_busy[crit]) * (p > 1)
        rounds = wl.microbatches * stage_t > one_pass    # the busiest stage serves the micro-batches in turn
        pipe = wl.microbatches * stage_t if rounds else one_pass
        engine_s = engine.iteration_s(wl)
        step = pipe + dispatch_fill + engine_s
        host_wait = dispatch_fill + ((stage_busy[crit] - gpu_busy[crit]) * wl.microbatches if rounds else
                                     sum(stage_busy) - sum(gpu_busy))     # the GPU waiting on the host's dispatch
        per_step = wl.decode.tokens_per_step             # speculative decoding: accepted drafts + 1
        total = step * wl.decode.new_tokens / per_step
        tokens_per_s = wl.global_batch * wl.decode.samples * per_step / step
        n_micro_global = wl.global_batch // wl.micro_batch
    else:
        mb = wl.microbatches
        passes = [(f, b - w, w) for f, b, w in zip(fwd_stage, bwd_last_stage, wgrad_stage)] \
            if wl.mode is Mode.TRAIN else None
        pipe = pipeline_time_s(stage_t, mb, wl, fill_t, passes)
        # the collectives already carry one stage's parameters (memory.params_per_device)
        exposed_dp = exposed_dp_s(dp_comm_s, dp_gather_s, fwd_stage[crit], bwd_last_stage[crit], mb, per_stage[crit],
                                  wl.memory.zero_stage if wl.mode is Mode.TRAIN else 0)
        if wl.mode is Mode.PREFILL:
            engine_s = engine.iteration_s(wl)
        offload_s = offload_exposed_s(wl, hw, fwd_stage[0], bwd_last_stage[0]) * mb
        step = pipe + dispatch_fill + exposed_dp + step_ops_s + engine_s + offload_s
        host_wait = dispatch_fill + (stage_busy[crit] - gpu_busy[crit]) * mb
        total = step
        tokens_per_s = tokens_global / step
        n_micro_global = wl.global_batch // wl.micro_batch
    ranks = par.tp * par.cp        # the devices one micro-batch is split over (every pipeline stage in the graph)
    model_flops = fwd_flops * ranks * n_micro_global
    hardware_flops = hw_flops * ranks * n_micro_global
    # MFU against the peak of the format the model's linears run in (FP8 / FP4 under a precision recipe)
    peak = device.peak(wl.precision.dtype or wl.dtype)
    denom = step * wl.devices * peak
    static_w = device.busy_w * wl.devices + hosts_power_w(hw, wl.devices)
    energy = dyn_mb_j * ranks * n_micro_global + dyn_step_j * wl.devices + static_w * step
    # offloaded activations cross the host link twice per micro-batch
    energy += 2 * offloaded_activation_bytes(wl) * mb * wl.devices * host_link_j_per_byte(hw)
    busy = mb * stage_t
    bubble = max(0.0, pipe - busy) if wl.mode is not Mode.DECODE else max(0.0, pipe - stage_t * 1)
    # decode: every stage's work once, or the busiest stage's once per micro-batch (rounds)
    per_stage = wl.mode is Mode.DECODE and not rounds
    scale = (busy / stage_t if wl.mode is not Mode.DECODE else wl.microbatches) if stage_t > 0 and not per_stage \
        else 1.0
    sb = {b: sum(s[b] for s in stage_bound) for b in Bound} if per_stage else stage_bound[crit]
    op_limit = sum(stage_power) if per_stage else stage_power[crit]
    breakdown = {
        "compute": (sb[Bound.COMPUTE]) * scale,
        "memory": (sb[Bound.MEMORY]) * scale,
        "communication": (sb[Bound.COMMUNICATION]) * scale,
        "latency": (sb[Bound.LATENCY]) * scale,
        "pipeline_bubble": bubble if wl.mode is not Mode.DECODE else 0.0,
        "data_parallel": exposed_dp,
        "optimizer": step_ops_s,
        "engine_overhead": engine_s + host_wait,
        "offload": offload_s,
        "power_limit": op_limit * scale,
    }
    devices_mem = device_memory_breakdowns(wl, hw)       # each pipeline device's own (cost/stages.py)
    mem = max(devices_mem, key=lambda b: b.peak_bytes)
    advisories = estimate_advisories(wl, getattr(hw, "name", "?"),
                                     breakdown["engine_overhead"] / step if step > 0 else 0.0)
    return EstimateResult(
        hardware=getattr(hw, "name", "?"), workload=wl.name, mode=wl.mode.value, devices=wl.devices,
        step_time_s=step, total_time_s=total, tokens_per_s=tokens_per_s, model_flops=model_flops,
        hardware_flops=hardware_flops, mfu=model_flops / denom if denom else 0.0,
        hfu=hardware_flops / denom if denom else 0.0, energy_j=energy, avg_power_w=energy / step if step else 0.0,
        cost_usd=step * wl.devices * device.cloud_usd_per_s,
        eflops=kinetics_eflops(hardware_flops, mem_bytes * ranks * n_micro_global, device, wl.dtype),
        time_breakdown_s=MappingProxyType(breakdown), memory=mem, ops=tuple(op_rows),
        clock_scale=(ops_s - power_s) / ops_s if ops_s > 0 else 1.0, power=power.value, advisories=advisories,
        stage_busy_s=tuple(stage_busy),
        stage_memory_bytes=tuple(b.peak_bytes for b in devices_mem) if len(devices_mem) > 1 else ())
