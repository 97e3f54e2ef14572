"""Pipeline-parallel training schedules as task graphs, timed by the event engine.

A schedule is the order of passes on each of ``p`` devices for ``m`` micro-batches: forward (F),
backward (B) and, for schedules that split the backward, weight-gradient (W; otherwise B
includes W). :func:`simulate_pipeline` turns the orders into a :class:`~simhw.sim.engine.TaskGraph`
(each pass waits for its producer and for the previous pass on its device; a cross-device edge
goes through a send/recv task on the link between the two devices) and runs it.

Schedules and sources (orders are built by rule, then timed by the engine):

- ``gpipe``: all F, then all B (Huang et al., GPipe, arXiv 1811.06965).
- ``1f1b``: p-1-d warm-up forwards on device d, then one F one B, then the cool-down
  (Narayanan et al., PipeDream-Flush, arXiv 2006.09503; Megatron-LM).
- ``interleaved``: Megatron-LM's interleaved 1F1B with ``chunks`` model chunks per device,
  micro-batches in groups of p; needs m to be a multiple of p (Narayanan et al., SC'21,
  arXiv 2104.04473 §2.2).
- ``zb-h1``: 1F1B order with the backward split; device d runs each W d passes after its B,
  and the deferred W fill the cool-down. With T_F = T_B = T_W the step is (3m + p - 1)·T, a
  bubble of (p-1)·T per device, a third of 1F1B's, at 1F1B's peak memory (Qi et al., "Zero
  Bubble Pipeline Parallelism", arXiv 2401.10241 §3.1, Fig. 3). The order is fixed; for very
  unequal T_F, T_B, T_W it is not re-optimised as the paper's ILP schedules are.
- ``v-half``, ``v-min``: two chunks per device in a V, from the repeating building block and
  squeeze passes of Qi et al., "Pipeline Parallelism with Controllable Memory" (arXiv
  2405.15362); see :mod:`simhw.sim._vshape`. The peak memory is a result, not a cap.

Memory: every F of a chunk allocates that chunk's activations (1/chunks of a micro-batch's
activations on the device) in the device's pool; the B (or the W, when split) of the same chunk
frees them. ``peak_activation_microbatches`` is the pool peak in micro-batch units. Bubble rate
is ``1 - (T_F + T_B + T_W)·m / longest_stage_time`` as in the schedule playground of Qi et al.
(seed-targets §7b), where a stage's time runs from its first pass's start to its last pass's end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..workload.spec import PipeSchedule
from .engine import Schedule, TaskGraph, TaskGraphBuilder, simulate


# The schedules are the workload's closed choice (workload/spec.py); one enum serves both.
PipelineKind = PipeSchedule


SPLIT_BACKWARD = {PipelineKind.ZB_H1, PipelineKind.V_HALF, PipelineKind.V_MIN}


@dataclass(frozen=True)
class Pass:
    """One pass on one device: ``kind`` F, B or W, of model ``chunk`` for ``microbatch``."""

    kind: str
    chunk: int
    microbatch: int


@dataclass(frozen=True, eq=False)
class PipelineResult:
    """Timing and activation memory of one pipeline schedule."""

    kind: PipelineKind
    num_stages: int
    num_microbatches: int
    chunks: int
    step_time_s: float
    longest_stage_time_s: float
    bubble_rate: float
    peak_activation_microbatches: np.ndarray
    orders: tuple[tuple[Pass, ...], ...]
    task_pass: tuple[tuple[int, Pass] | None, ...]
    graph: TaskGraph
    schedule: Schedule


def num_chunks(kind: PipelineKind, chunks: int = 2) -> int:
    """Model chunks per device: ``chunks`` for interleaved, 2 for V shapes, else 1."""
    if kind is PipelineKind.INTERLEAVED:
        return chunks
    return 2 if kind in (PipelineKind.V_HALF, PipelineKind.V_MIN) else 1


def global_stage(kind: PipelineKind, p: int, device: int, chunk: int) -> int:
    """Position of (device, chunk) along the model: interleaved cycles, V turns back."""
    if kind in (PipelineKind.V_HALF, PipelineKind.V_MIN):
        return device if chunk == 0 else 2 * p - 1 - device
    return chunk * p + device


def _one_f_one_b(p: int, m: int, d: int, split: bool) -> list[Pass]:
    """1F1B on device d; with ``split`` (ZB-H1) each W follows its B but d W's later.

    Delaying W by d passes on device d lets F and B run ahead so that the deferred W fill the
    cool-down; in-flight micro-batches stay <= p on every device, 1F1B's peak (Qi et al.,
    arXiv 2401.10241 Fig. 3, ZB-H1).
    """
    warm = min(p - 1 - d, m)
    lag = d if split else 0
    out = [Pass("F", 0, mb) for mb in range(warm)]
    for k in range(m):
        if warm + k < m:
            out.append(Pass("F", 0, warm + k))
        out.append(Pass("B", 0, k))
        if split and k >= lag:
            out.append(Pass("W", 0, k - lag))
    if split:
        out += [Pass("W", 0, k) for k in range(max(m - lag, 0), m)]
    return out


def _interleaved(p: int, m: int, v: int, d: int) -> list[Pass]:
    """Megatron-LM ``forward_backward_pipelining_with_interleaving`` order for device d."""
    if m % p:
        raise ValueError(f"interleaved 1F1B needs micro-batches ({m}) to be a multiple of "
                         f"stages ({p})")
    total = m * v

    def unit(k: int, forward: bool) -> tuple[int, int]:
        group, within = divmod(k, p * v)
        chunk = within // p
        return (chunk if forward else v - 1 - chunk), group * p + within % p

    warm = total if m == p else min((p - d - 1) * 2 + (v - 1) * p, total)
    out = [Pass("F", *unit(k, True)) for k in range(warm)]
    for k in range(total - warm):
        out.append(Pass("F", *unit(warm + k, True)))
        out.append(Pass("B", *unit(k, False)))
    out += [Pass("B", *unit(k, False)) for k in range(total - warm, total)]
    return out


def pipeline_orders(kind: PipelineKind | str, num_stages: int, num_microbatches: int,
                    chunks: int = 2) -> tuple[tuple[Pass, ...], ...]:
    """The order of passes on each device."""
    kind = PipelineKind(kind)
    p, m = num_stages, num_microbatches
    if p < 1 or m < 1:
        raise ValueError(f"need at least 1 stage and 1 micro-batch, got p={p}, m={m}")
    if kind is PipelineKind.GPIPE:
        orders = [[Pass("F", 0, k) for k in range(m)] + [Pass("B", 0, k) for k in range(m)]
                  for _ in range(p)]
    elif kind in (PipelineKind.ONE_F_ONE_B, PipelineKind.ZB_H1):
        orders = [_one_f_one_b(p, m, d, kind is PipelineKind.ZB_H1) for d in range(p)]
    elif kind is PipelineKind.INTERLEAVED:
        if chunks < 1:
            raise ValueError(f"chunks must be >= 1, got {chunks}")
        orders = [_interleaved(p, m, chunks, d) for d in range(p)]
    else:
        from ._vshape import v_orders
        orders = [[Pass(*x) for x in order] for order in v_orders(p, m, kind.value)]
    return tuple(tuple(o) for o in orders)


def _per_device(value: float | Sequence[float], p: int, name: str) -> np.ndarray:
    arr = np.asarray(value, np.float64)
    if arr.ndim == 0:
        arr = np.full(p, float(arr))
    if arr.shape != (p,) or np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be one finite value >= 0 or one per stage ({p}), "
                         f"got {value!r}")
    return arr


def build_pipeline_graph(kind: PipelineKind | str, orders: Sequence[Sequence[Pass]],
                         forward_s, backward_s, weight_grad_s, send_recv_s: float = 0.0,
                         ) -> tuple[TaskGraph, tuple[tuple[int, Pass] | None, ...]]:
    """Task graph for per-device ``orders``; durations are per device for all its chunks.

    Returns the graph and, per task, ``(device, Pass)`` (``None`` for send/recv tasks). Devices
    are resources and pools ``0..p-1``; links get resources ``p..``; pool units are chunks.
    """
    kind = PipelineKind(kind)
    p = len(orders)
    v = max(pas.chunk for order in orders for pas in order) + 1
    split = kind in SPLIT_BACKWARD
    t_f = _per_device(forward_s, p, "forward_s") / v
    t_b = _per_device(backward_s, p, "backward_s") / v
    t_w = _per_device(weight_grad_s, p, "weight_grad_s") / v
    if not split:
        t_b, t_w = t_b + t_w, np.zeros(p)
    ids: dict[tuple[str, int, int], int] = {}  # (kind, global stage, mb) -> task id
    where: list[tuple[int, Pass]] = []
    for d, order in enumerate(orders):
        for pas in order:
            key = (pas.kind, global_stage(kind, p, d, pas.chunk), pas.microbatch)
            if key in ids or pas.kind not in "FBW" or (pas.kind == "W" and not split):
                raise ValueError(f"device {d}: pass {pas} is repeated or not allowed in {kind.value}")
            ids[key] = len(where)
            where.append((d, pas))
    expected = p * v * len({pas.microbatch for order in orders for pas in order})
    if len(ids) != expected * (3 if split else 2):
        raise ValueError(f"{kind.value}: orders hold {len(ids)} passes, expected "
                         f"{expected * (3 if split else 2)}")
    last = p * v - 1
    b = TaskGraphBuilder(n_resources=p, pool_capacity_bytes=[np.inf] * p)
    links: dict[tuple[int, int], int] = {}
    sends: list[tuple[int, int]] = []  # (producer task, link resource)

    def edge(src: int, dst_device: int) -> int:
        src_device = where[src][0]
        if send_recv_s <= 0 or src_device == dst_device:
            return src
        link = links.setdefault((src_device, dst_device), p + len(links))
        sends.append((src, link))
        return len(where) + len(sends) - 1

    for task, (d, pas) in enumerate(where):
        g, mb = global_stage(kind, p, d, pas.chunk), pas.microbatch
        deps = [task - 1] if task > 0 and where[task - 1][0] == d else []
        if pas.kind == "F":
            if g > 0:
                deps.append(edge(ids[("F", g - 1, mb)], d))
            b.add(t_f[d], d, deps, alloc=(d, 1.0))
            continue
        if pas.kind == "B":
            deps.append(ids[("F", g, mb)])
            if g < last:
                deps.append(edge(ids[("B", g + 1, mb)], d))
            b.add(t_b[d], d, deps, free=None if split else (d, 1.0))
            continue
        deps.append(ids[("B", g, mb)])
        b.add(t_w[d], d, deps, free=(d, 1.0))
    b.n_resources = p + len(links)
    for src, link in sends:
        b.add(float(send_recv_s), link, [src])
    return b.build(), tuple(where) + (None,) * len(sends)


def simulate_pipeline(kind: PipelineKind | str, num_stages: int, num_microbatches: int,
                      forward_s, backward_s, weight_grad_s=0.0, send_recv_s: float = 0.0,
                      chunks: int = 2, backend: str | None = None) -> PipelineResult:
    """Build and time one schedule.

    ``forward_s``, ``backward_s``, ``weight_grad_s`` are per device (all layers it holds), one
    value or one per stage; ``backward_s`` excludes the weight-gradient part. ``chunks`` is the
    number of model chunks per device for ``interleaved``.
    """
    kind = PipelineKind(kind)
    p, m = num_stages, num_microbatches
    orders = pipeline_orders(kind, p, m, chunks)
    graph, task_pass = build_pipeline_graph(kind, orders, forward_s, backward_s, weight_grad_s,
                                            send_recv_s)
    sched = simulate(graph, backend=backend)
    v = num_chunks(kind, chunks)
    n_pass = sum(len(o) for o in orders)
    device = graph.resource[:n_pass]
    first = np.full(p, np.inf)
    last = np.zeros(p)
    np.minimum.at(first, device, sched.start_s[:n_pass])
    np.maximum.at(last, device, sched.end_s[:n_pass])
    longest = float(np.max(last - first))
    work = (_per_device(forward_s, p, "forward_s") + _per_device(backward_s, p, "backward_s")
            + _per_device(weight_grad_s, p, "weight_grad_s")) * m
    bubble = 1.0 - float(np.mean(work)) / longest if longest > 0 else 0.0
    peak = np.asarray(sched.peak_bytes, np.float64) / v
    peak.setflags(write=False)
    return PipelineResult(kind=kind, num_stages=p, num_microbatches=m, chunks=v,
                          step_time_s=sched.makespan_s, longest_stage_time_s=longest,
                          bubble_rate=bubble, peak_activation_microbatches=peak, orders=orders,
                          task_pass=task_pass, graph=graph, schedule=sched)


def one_f_one_b_bubble_rate(num_stages: int, num_microbatches: int) -> float:
    """(p-1)/(m+p-1): 1F1B bubble rate with T_F = T_B = T_W (seed-targets §7a, "B")."""
    return (num_stages - 1) / (num_microbatches + num_stages - 1)
