"""Pipeline-parallel step formulas (used by cost/estimate.py and sim/pipeline_run.py): the
activations' trip across a stage boundary, the schedules' steady intervals and fill, and the
data-parallel reduction a step exposes. Sources with each function."""
from __future__ import annotations

from typing import Sequence

from ..spec.model import DeviceSpec, NodeSpec
from ..workload.graph import Collective, LinkScope
from ..workload.spec import Mode, PipeSchedule, Workload
from .comm import collective_time_s, network_link, pick_link


def stage_p2p_s(wl: Workload, hw: DeviceSpec | NodeSpec, device: DeviceSpec) -> float:
    """Seconds to pass one micro-batch's activations (or their gradients) across a pipeline-stage
    boundary. Each tensor-parallel rank sends its 1/tp share over its own link (Megatron's
    scatter/gather of the boundary tensor, Narayanan et al. 2021 §4.1; with sequence parallelism
    the tensor is already split); without SP the receiving ranks all-gather the shares in the node."""
    par = wl.parallelism
    tokens = wl.seq_len // par.cp if wl.mode is not Mode.DECODE else wl.decode.samples
    p2p_bytes = wl.micro_batch * tokens * wl.model.hidden * wl.dtype.bytes
    span = par.tp * par.cp * par.dp
    scope = LinkScope.INTER if isinstance(hw, NodeSpec) and span >= hw.device_count else LinkScope.INTRA
    link = pick_link(hw, scope, span + 1)
    if scope is LinkScope.INTER and link is hw.network:    # every device of the node sends at once
        link = network_link(hw, hw.device_count)
    t = collective_time_s(Collective.SEND_RECV, p2p_bytes / par.tp, 2, link, device)
    if par.tp > 1 and not par.sp:
        t += collective_time_s(Collective.ALL_GATHER, p2p_bytes, par.tp, pick_link(hw, LinkScope.INTRA, par.tp), device)
    return t


_BUBBLE_SHARE = {PipeSchedule.GPIPE: 1.0, PipeSchedule.ONE_F_ONE_B: 1.0, PipeSchedule.ZB_H1: 1 / 3,
                 PipeSchedule.V_HALF: 1 / 2, PipeSchedule.V_MIN: 2 / 3}


def steady_interval_s(schedule: PipeSchedule, f: float, b: float, w: float) -> float:
    """Seconds per micro-batch a stage takes in the steady state of ``schedule``, given its forward
    ``f``, input-gradient backward ``b`` and weight-gradient ``w`` seconds per micro-batch. With equal
    passes every schedule keeps the stage busy (f + b + w); otherwise the V-shape building blocks of
    Qi et al. 2024 ("Pipeline Parallelism with Controllable Memory") leave gaps: V-Min's block gives
    each of its three passes a slot as long as the longer of F and B (a W fits in either or spills
    into the gaps), 3 max(f, b); V-Half's stays bubble-free while w + 2f >= 2b and w + 2b >= 2f (the
    paper's condition) and else takes max(2b, 2f) + w / 2.
    sim/pipeline.py's event-driven schedules reproduce both (tests/unit/test_pipeline_fill.py)."""
    busy = f + b + w
    if schedule is PipeSchedule.V_MIN:
        return max(busy, 3.0 * max(f, b))
    if schedule is PipeSchedule.V_HALF:
        return max(busy, 2.0 * max(f, b) + w / 2.0)
    return busy


def pipeline_time_s(stage_time_s: float, microbatches: int, wl: Workload, fill_stage_s: float | None = None,
                    passes: Sequence[tuple[float, float, float]] | None = None) -> float:
    """Step time of ``microbatches`` through ``pp`` stages (see module doc): the slowest stage's
    ``stage_time_s`` per micro-batch in the steady state, and the fill and drain slots at
    ``fill_stage_s``, the mean of the other stages (default: all stages equal). With stage times
    t_s, 1F1B takes sum_s t_s + (m - 1) max_s t_s: the first micro-batch's forward and the last one's
    backward pass every stage once, the steady state runs at the slowest (Narayanan et al. 2021
    §2.2 with unequal stages, e.g. the last stage's output layer and loss).

    ``passes``: per stage, its forward, input-gradient and weight-gradient seconds per micro-batch,
    for the split-backward schedules whose bubbles depend on them. ZB-H1 fills (p - 1) max(f + b -
    w, f, b) of the slowest stage (Qi et al. 2023, "Zero Bubble Pipeline Parallelism" §3: (p - 1)
    (T_F + T_B - T_W), a third of 1F1B's with equal passes); V-Min and V-Half run the steady state
    at the stages' mean steady interval (steady_interval_s) when it exceeds the slowest stage's
    work. Without ``passes`` the passes are taken as equal. sim/pipeline.py's event-driven
    schedules agree (tests/unit/test_pipeline_fill.py, tests/property/test_sim_integration.py)."""
    par = wl.parallelism
    p = par.pp
    if p == 1:
        return microbatches * stage_time_s
    fill_s = stage_time_s if fill_stage_s is None else fill_stage_s
    gap = 0.0
    f, b, w = 1.0, 1.0, 1.0
    if passes and any(sum(x) > 0 for x in passes):
        f, b, w = max(passes, key=sum)
        mean_interval = sum(steady_interval_s(par.schedule, *x) for x in passes) / len(passes)
        gap = max(0.0, mean_interval - (f + b + w))
    if par.schedule is PipeSchedule.INTERLEAVED:
        fill = (p - 1) / max(par.interleave, 1)
    elif par.schedule is PipeSchedule.ZB_H1:
        fill = (p - 1) * max(f + b - w, f, b) / (f + b + w)
    else:
        fill = (p - 1) * _BUBBLE_SHARE[par.schedule]
    return microbatches * (stage_time_s + gap) + fill * fill_s


def exposed_dp_s(comm_s: float, gather_s: float, fwd_s: float, bwd_s: float, microbatches: int,
                 layers: int, zero_stage: int) -> float:
    """Seconds of data-parallel communication a training step exposes (see module doc).

    ``comm_s``: one stage's whole reduction (gradient reduce plus any parameter gather) once,
    ``gather_s`` its all-gather part; ``fwd_s`` / ``bwd_s``: one micro-batch's forward / backward
    on that stage, of ``layers`` layers. Without ZeRO-3 the reduction overlaps the last
    micro-batch's backward; ZeRO-2, which keeps only its shard of the gradients, reduce-scatters
    every micro-batch's under that micro-batch's backward (DeepSpeed's bucketed reduction, Megatron
    FSDP's optim_grads); with ZeRO-3 every micro-batch gathers twice and reduces once, hidden under
    its own compute except one layer's gathers and reduction."""
    reduce_s = comm_s - gather_s
    if zero_stage >= 3 and gather_s > 0:
        return microbatches * (max(0.0, gather_s - fwd_s) + max(0.0, gather_s + reduce_s - bwd_s)
                               + (2.0 * gather_s + reduce_s) / max(1, layers))
    earlier = (microbatches - 1) * max(0.0, reduce_s - bwd_s) if zero_stage == 2 else 0.0
    return earlier + max(0.0, comm_s - bwd_s)
