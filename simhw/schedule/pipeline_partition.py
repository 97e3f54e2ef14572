"""Pipeline partition: split a layer chain into contiguous stages, and pick schedule and micro-batches.

For each candidate (schedule, micro-batch count m) a MILP splits the layers (embedding first,
output/vocabulary layer last; both may cost more) into p·v contiguous *virtual stages*, assigned
to devices as the schedule does (v = 1 for 1F1B; v chunks round-robin for interleaved; a V shape,
device d holding stages d and 2p−1−d, for V-Half and V-Min), minimising the largest per-device
time per micro-batch under per-device memory caps. A device's memory is its static bytes plus its
activation bytes per micro-batch times the micro-batches it holds in flight:

- 1F1B: device d holds p − d (Narayanan et al. 2021; Korthikanti et al. arXiv 2205.05198 §4.2).
- interleaved, v chunks: ((p − d − 1)·2 + (v − 1)·p + 1)/v (Megatron-LM warm-up count; for
  d = 0 this is Korthikanti's p·(1 + (p − 1)/(p·v))).
- V-Half: ⌊(p + 2)/2⌋, V-Min: ⌊(p + 4)/3⌋ on every device (Qi et al., arXiv 2405.15362;
  ``seed-targets.md`` §7b).

The step time is m · max_d T_d / (1 − bubble), with bubble rates from ``seed-targets.md`` §7a
(T_F = T_B = T_W): 1F1B B = (p − 1)/(m + p − 1); interleaved (p − 1)/(v·m + p − 1) (Narayanan
et al. 2021 §2.2); V-Half B/2; V-Min 2B/3 (its O(n) overhead is ignored). Per-layer time per
micro-batch is ``overhead_s + b·time_per_sample_s`` with b = global batch / m, so small
micro-batches pay a fixed cost. Vocabulary parallelism (§7d) is not modelled.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from simhw.errors import InfeasibleError
from simhw.schedule.solve import (SolverLimitError, SolveStatus, infeasible_message, solve_model,
                                  timed_build)


class PipelineSchedule(str, enum.Enum):
    ONE_F_ONE_B = "1f1b"
    INTERLEAVED = "interleaved"
    V_HALF = "v-half"
    V_MIN = "v-min"


@dataclass(frozen=True)
class PipelineLayer:
    name: str
    time_per_sample_s: float  # forward + backward time per sample
    static_bytes: float  # weights, gradients, optimizer state
    activation_bytes_per_sample: float
    overhead_s: float = 0.0  # fixed time per micro-batch (launches, small-batch inefficiency)


@dataclass(frozen=True)
class PipelineData:
    layers: tuple[PipelineLayer, ...]
    num_stages: int  # p, the number of devices
    global_batch_samples: int
    device_capacity_bytes: float | tuple[float, ...]
    micro_batch_counts: tuple[int, ...]
    schedules: tuple[PipelineSchedule, ...] = tuple(PipelineSchedule)
    interleave_chunks: int = 2

    def capacity(self, d: int) -> float:
        c = self.device_capacity_bytes
        return c[d] if isinstance(c, tuple) else c


@dataclass(frozen=True)
class CandidateOutcome:
    schedule: PipelineSchedule
    num_micro_batches: int
    step_time_s: float | None  # None when infeasible or skipped
    status: SolveStatus | None


@dataclass(frozen=True)
class PipelineResult:
    status: SolveStatus
    mip_gap: float | None
    schedule: PipelineSchedule
    num_micro_batches: int
    micro_batch_samples: float
    stage_layers: tuple[tuple[int, ...], ...]  # layer indices of each virtual stage
    device_stages: tuple[tuple[int, ...], ...]  # virtual stages of each device
    device_time_s: tuple[float, ...]  # per micro-batch
    device_memory_bytes: tuple[float, ...]
    bubble_fraction: float
    step_time_s: float
    candidates: tuple[CandidateOutcome, ...]
    build_time_s: float
    solve_time_s: float


def chunks(schedule: PipelineSchedule, interleave_chunks: int = 2) -> int:
    return {PipelineSchedule.ONE_F_ONE_B: 1, PipelineSchedule.INTERLEAVED: interleave_chunks}.get(schedule, 2)


def device_of_stage(schedule: PipelineSchedule, p: int, k: int) -> int:
    if schedule in (PipelineSchedule.V_HALF, PipelineSchedule.V_MIN):
        return k if k < p else 2 * p - 1 - k
    return k % p


def inflight_micro_batches(schedule: PipelineSchedule, p: int, d: int, m: int, v: int = 2) -> float:
    """Micro-batches of device d's activations held at its peak (see the module docstring)."""
    if schedule is PipelineSchedule.ONE_F_ONE_B:
        k = p - d
    elif schedule is PipelineSchedule.INTERLEAVED:
        k = ((p - d - 1) * 2 + (v - 1) * p + 1) / v
    elif schedule is PipelineSchedule.V_HALF:
        k = (p + 2) // 2
    else:
        k = (p + 4) // 3
    return float(min(k, m))


def bubble_fraction(schedule: PipelineSchedule, p: int, m: int, v: int = 2) -> float:
    """Idle fraction of the step (``seed-targets.md`` §7a, T_F = T_B = T_W)."""
    b = (p - 1) / (m + p - 1)
    return {PipelineSchedule.ONE_F_ONE_B: b,
            PipelineSchedule.INTERLEAVED: (p - 1) / (v * m + p - 1),
            PipelineSchedule.V_HALF: b / 2.0,
            PipelineSchedule.V_MIN: 2.0 * b / 3.0}[schedule]


def _per_microbatch(data: PipelineData, m: int):
    b = data.global_batch_samples / m
    t = [l.overhead_s + b * l.time_per_sample_s for l in data.layers]
    act = [b * l.activation_bytes_per_sample for l in data.layers]
    return b, t, act


def evaluate_partition(data: PipelineData, schedule: PipelineSchedule, m: int, bounds):
    """Device times (per micro-batch) and memory for virtual-stage boundaries ``bounds`` (K + 1 cuts)."""
    p, v = data.num_stages, chunks(schedule, data.interleave_chunks)
    _, t, act = _per_microbatch(data, m)
    times, mem = [0.0] * p, [0.0] * p
    for k in range(p * v):
        d = device_of_stage(schedule, p, k)
        for i in range(bounds[k], bounds[k + 1]):
            times[d] += t[i]
            mem[d] += data.layers[i].static_bytes + inflight_micro_batches(schedule, p, d, m, v) * act[i]
    return tuple(times), tuple(mem)


def _runs(data: PipelineData) -> list[tuple[int, int]]:
    """[start, end) runs of consecutive layers with identical numbers (the transformer body is one)."""
    def key(l):
        return (l.time_per_sample_s, l.static_bytes, l.activation_bytes_per_sample, l.overhead_s)
    runs: list[tuple[int, int]] = []
    for i, layer in enumerate(data.layers):
        if runs and key(data.layers[runs[-1][0]]) == key(layer):
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def build_model(data: PipelineData, schedule: PipelineSchedule, m: int, objective: str = "time"):
    """Contiguous-partition MILP for one (schedule, m). ``objective="memory"`` minimises the
    largest device memory with no caps (used to report the least memory needed).

    Integer cut positions b_k (layers before virtual stage k, b_{k+1} ≥ b_k + 1) and, per cut and
    run of identical layers [s_r, e_r), u_{k,r} = clamp(b_k − s_r, 0, e_r − s_r) layers of the run
    before the cut, linearised with two binaries (cut past the run's start / past its end) and
    big-M = n. A stage's time or bytes is Σ_r per-layer value · (u_{k+1,r} − u_{k,r}), so the model
    grows with the number of runs, not layers: a transformer body of identical layers is one run."""
    import pyomo.environ as pyo

    n, p, v = len(data.layers), data.num_stages, chunks(schedule, data.interleave_chunks)
    big_k = p * v
    if n < big_k:
        raise InfeasibleError(f"{n} layers cannot fill {big_k} pipeline stages of schedule {schedule.value}.")
    _, t, act = _per_microbatch(data, m)
    ts = max(t + [1e-12])
    bs = max([l.static_bytes for l in data.layers] + act + [1.0])
    runs = _runs(data)
    free = [(k, r) for k in range(1, big_k) for r, (sr, er) in enumerate(runs)
            if er > k and sr < n - big_k + k]  # runs the cut can fall inside of, or on either side
    mdl = pyo.ConcreteModel(name=f"pipeline_{schedule.value}_{m}")
    mdl.byte_scale, mdl.time_scale, mdl.num_cuts, mdl.fixed_over_cap = bs, ts, big_k - 1, False
    mdl.b = pyo.Var(range(1, big_k), domain=pyo.Integers, bounds=lambda _, k: (k, n - big_k + k))
    mdl.order = pyo.Constraint(range(1, big_k - 1), rule=lambda md, k: md.b[k + 1] >= md.b[k] + 1)
    mdl.F = pyo.Set(initialize=free, dimen=2, ordered=True)
    mdl.past_start = pyo.Var(mdl.F, domain=pyo.Binary)  # b_k ≥ s_r + 1
    mdl.past_end = pyo.Var(mdl.F, domain=pyo.Binary)  # b_k ≥ e_r
    mdl.u = pyo.Var(mdl.F, bounds=lambda _, k, r: (0.0, runs[r][1] - runs[r][0]))
    mdl.link = pyo.ConstraintList()
    for k, r in free:
        sr, er = runs[r]
        a, c, uk, b = mdl.past_start[k, r], mdl.past_end[k, r], mdl.u[k, r], mdl.b[k]
        mdl.link.add(b >= sr + 1 - n * (1 - a))
        mdl.link.add(b <= sr + n * a)
        mdl.link.add(b >= er - n * (1 - c))
        mdl.link.add(b <= er - 1 + n * c)
        mdl.link.add(c <= a)
        mdl.link.add(uk <= (er - sr) * a)
        mdl.link.add(uk >= (er - sr) * c)
        mdl.link.add(uk <= b - sr + n * (1 - a))
        mdl.link.add(uk >= b - sr - n * c - n * (1 - a))

    def before(k, r):  # layers of run r before cut k
        sr, er = runs[r]
        if k == 0:
            return 0.0
        if k == big_k:
            return float(er - sr)
        if (k, r) in mdl.F:
            return mdl.u[k, r]
        return float(er - sr) if er <= k else 0.0

    for k in range(1, big_k):
        mdl.link.add(sum(before(k, r) for r in range(len(runs))) == mdl.b[k])

    def stage_sum(k, per_layer):  # Σ over the layers of virtual stage k
        return sum(per_layer[runs[r][0]] * (before(k + 1, r) - before(k, r)) for r in range(len(runs)))

    stages = {d: [k for k in range(big_k) if device_of_stage(schedule, p, k) == d] for d in range(p)}
    mdl.T = pyo.Var(bounds=(0.0, sum(t) / ts))
    mdl.Z = pyo.Var(bounds=(0.0, None))
    mdl.dev = pyo.ConstraintList()
    for d in range(p):
        f = inflight_micro_batches(schedule, p, d, m, v)
        per_time = [x / ts for x in t]
        per_mem = [(l.static_bytes + f * a) / bs for l, a in zip(data.layers, act)]
        mdl.dev.add(sum(stage_sum(k, per_time) for k in stages[d]) <= mdl.T)
        mem_d = sum(stage_sum(k, per_mem) for k in stages[d])
        if objective == "memory":
            mdl.dev.add(mem_d <= mdl.Z)
        elif isinstance(mem_d, (int, float)):  # the stages are fixed (as many layers as stages)
            mdl.fixed_over_cap = mdl.fixed_over_cap or mem_d > data.capacity(d) / bs * (1 + 1e-12)
        else:
            mdl.dev.add(mem_d <= data.capacity(d) / bs)
    mdl.obj = pyo.Objective(expr=mdl.Z + 1e-6 * mdl.T if objective == "memory" else mdl.T)
    return mdl


def _bounds_from(mdl, n: int, big_k: int) -> tuple[int, ...]:
    return (0,) + tuple(int(round(mdl.b[k].value)) for k in range(1, big_k)) + (n,)


def solve_fixed(data: PipelineData, schedule: PipelineSchedule, m: int, time_limit_s: float = 30.0,
                mip_gap: float = 1e-6) -> PipelineResult:
    """Best partition for one (schedule, m); raises :class:`InfeasibleError` when memory does not fit."""
    result = _solve_candidate(data, schedule, m, time_limit_s, mip_gap)
    if result is None:
        need = least_memory_bytes(data, schedule, m, time_limit_s)
        raise InfeasibleError(infeasible_message(
            f"Pipeline partition ({schedule.value}, m={m})", "per-device memory",
            min(data.capacity(d) for d in range(data.num_stages)), need))
    return result


def _solve_candidate(data, schedule, m, time_limit_s, mip_gap) -> PipelineResult | None:
    n, p, v = len(data.layers), data.num_stages, chunks(schedule, data.interleave_chunks)
    mdl, build_s = timed_build(build_model, data, schedule, m)
    if mdl.fixed_over_cap:
        return None
    info = solve_model(mdl, time_limit_s=time_limit_s, mip_gap=mip_gap, build_time_s=build_s)
    if info.status is SolveStatus.INFEASIBLE:
        return None
    bounds = _bounds_from(mdl, n, p * v)
    times, mem = evaluate_partition(data, schedule, m, bounds)
    bubble = bubble_fraction(schedule, p, m, v)
    return PipelineResult(
        status=info.status, mip_gap=info.mip_gap, schedule=schedule, num_micro_batches=m,
        micro_batch_samples=data.global_batch_samples / m,
        stage_layers=tuple(tuple(range(bounds[k], bounds[k + 1])) for k in range(p * v)),
        device_stages=tuple(tuple(k for k in range(p * v) if device_of_stage(schedule, p, k) == d)
                            for d in range(p)),
        device_time_s=times, device_memory_bytes=mem, bubble_fraction=bubble,
        step_time_s=m * max(times) / (1.0 - bubble), candidates=(), build_time_s=build_s,
        solve_time_s=info.solve_time_s)


def least_memory_bytes(data: PipelineData, schedule: PipelineSchedule, m: int,
                       time_limit_s: float = 30.0) -> float:
    """The smallest per-device cap any partition meets for (schedule, m)."""
    n, p, v = len(data.layers), data.num_stages, chunks(schedule, data.interleave_chunks)
    mdl = build_model(data, schedule, m, objective="memory")
    solve_model(mdl, time_limit_s=time_limit_s, mip_gap=1e-6)
    return max(evaluate_partition(data, schedule, m, _bounds_from(mdl, n, p * v))[1])


def _usable(data: PipelineData, schedule: PipelineSchedule, m: int) -> bool:
    v = chunks(schedule, data.interleave_chunks)
    if len(data.layers) < data.num_stages * v or m < 1:
        return False
    return not (schedule is PipelineSchedule.INTERLEAVED and m % data.num_stages)


def solve(data: PipelineData, time_limit_s: float = 30.0, mip_gap: float = 1e-6) -> PipelineResult:
    """Try every (schedule, m) candidate; return the one with the least step time.

    Interleaved needs m divisible by p (Megatron-LM); candidates that cannot fill the stages are
    skipped. When every candidate is memory-infeasible, raises :class:`InfeasibleError` with the
    least per-device memory over all candidates."""
    outcomes, best = [], None
    for schedule in data.schedules:
        for m in data.micro_batch_counts:
            if not _usable(data, schedule, m):
                outcomes.append(CandidateOutcome(schedule, m, None, None))
                continue
            try:
                r = _solve_candidate(data, schedule, m, time_limit_s, mip_gap)
            except SolverLimitError:  # no incumbent within the per-candidate time limit
                outcomes.append(CandidateOutcome(schedule, m, None, SolveStatus.TIME_LIMIT))
                continue
            if r is None:
                outcomes.append(CandidateOutcome(schedule, m, None, SolveStatus.INFEASIBLE))
                continue
            outcomes.append(CandidateOutcome(schedule, m, r.step_time_s, r.status))
            if best is None or r.step_time_s < best.step_time_s:
                best = r
    if best is None and any(o.status is SolveStatus.TIME_LIMIT for o in outcomes):
        raise SolverLimitError(f"No pipeline candidate found a feasible partition within {time_limit_s} s "
                               f"each; raise time_limit_s.")
    if best is None:
        usable = [(s, m) for s in data.schedules for m in data.micro_batch_counts if _usable(data, s, m)]
        if not usable:
            raise InfeasibleError("No (schedule, micro-batch count) candidate fits the layer count and p; "
                                  "add micro-batch counts or use fewer stages.")
        need = min(least_memory_bytes(data, s, m, time_limit_s) for s, m in usable)
        raise InfeasibleError(infeasible_message(
            "Pipeline partition", "per-device memory",
            min(data.capacity(d) for d in range(data.num_stages)), need))
    return replace(best, candidates=tuple(outcomes))
