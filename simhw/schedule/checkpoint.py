"""Checkpoint placement on a chain of layers under a memory budget, as a MILP.

Chen et al., "Training Deep Nets with Sublinear Memory Cost" (arXiv 1604.06174, §4;
``seed-targets.md`` §8): split a chain of n layers into segments and keep only the segment
boundaries (checkpoints) during the forward pass; in the backward pass each segment is recomputed
once from its checkpoint and its intermediates are held while it is back-propagated. The peak is

    peak = Σ_{i ∈ C} a_i + max_segments Σ_{i ∈ segment, i ∉ C} a_i          (Chen §4: O(k) + O(n/k))

and the recompute time is Σ_{i ∉ C} f_i (at most one extra forward pass). With unit layers the
least peak is ``min_k k + ⌈(n − k)/(k + 1)⌉ ≈ 2√n`` (:func:`chen_uniform_min_memory`).

The MILP keeps one binary c_i per layer output and one running-segment variable t_i
(t_i ≥ t_{i−1} + a_i − M_i·c_i, with big-M M_i = Σ_{j≤i} a_j from the data), which keeps it O(n)
(``ecosystem.md`` §3: running sums instead of O(n²) prefix sums).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from simhw.errors import InfeasibleError
from simhw.schedule.solve import SolveStatus, infeasible_message, solve_model, timed_build


@dataclass(frozen=True)
class ChainData:
    """A chain of n layers: the bytes of each layer's output and the time to compute it forward."""

    output_bytes: tuple[float, ...]
    forward_time_s: tuple[float, ...]
    memory_budget_bytes: float | None = None  # None: no cap (solve() then keeps everything)

    def __post_init__(self):
        if len(self.output_bytes) != len(self.forward_time_s):
            raise ValueError("output_bytes and forward_time_s must have one entry per layer")


@dataclass(frozen=True)
class CheckpointResult:
    status: SolveStatus
    mip_gap: float | None
    checkpoints: tuple[int, ...]  # 0-based indices of the layers whose outputs are kept
    segments: tuple[tuple[int, int], ...]  # [start, end) runs of recomputed layers
    peak_memory_bytes: float
    recompute_time_s: float
    build_time_s: float
    solve_time_s: float


def peak_memory_bytes(output_bytes, checkpoints) -> float:
    """Chen's peak for a given checkpoint set: kept outputs plus the largest recomputed segment."""
    kept = set(checkpoints)
    total, run, worst = 0.0, 0.0, 0.0
    for i, a in enumerate(output_bytes):
        if i in kept:
            total += a
            run = 0.0
        else:
            run += a
            worst = max(worst, run)
    return total + worst


def recompute_time_s(forward_time_s, checkpoints) -> float:
    kept = set(checkpoints)
    return sum(f for i, f in enumerate(forward_time_s) if i not in kept)


def segments_of(n: int, checkpoints) -> tuple[tuple[int, int], ...]:
    kept, out, start = set(checkpoints), [], None
    for i in range(n + 1):
        if i < n and i not in kept:
            start = i if start is None else start
        elif start is not None:
            out.append((start, i))
            start = None
    return tuple(out)


def chen_uniform_min_memory(n: int) -> int:
    """Least peak, in layer outputs, for n equal layers: min over k of k + ⌈(n − k)/(k + 1)⌉ ≈ 2√n."""
    return min(k + -(-(n - k) // (k + 1)) for k in range(0, n + 1))


def build_model(data: ChainData, objective: str = "recompute",
                recompute_budget_s: float | None = None):
    """Build the MILP. ``objective="recompute"``: min recompute time s.t. peak ≤ memory budget.
    ``objective="memory"``: min peak s.t. recompute ≤ ``recompute_budget_s`` (None: no limit)."""
    import pyomo.environ as pyo

    n = len(data.output_bytes)
    bs = max(list(data.output_bytes) + [1.0])
    ts = max(list(data.forward_time_s) + [1e-12])
    a = [x / bs for x in data.output_bytes]
    f = [x / ts for x in data.forward_time_s]
    prefix = [sum(a[: i + 1]) for i in range(n)]
    m = pyo.ConcreteModel(name="chen_checkpoint")
    m.byte_scale, m.time_scale, m.n = bs, ts, n
    m.I = pyo.RangeSet(0, n - 1)
    m.c = pyo.Var(m.I, domain=pyo.Binary)
    m.t = pyo.Var(m.I, bounds=lambda m, i: (0.0, prefix[i]))  # running segment bytes ending at i
    m.seg = pyo.Var(bounds=(0.0, prefix[-1] if n else 0.0))
    m.run = pyo.Constraint(m.I, rule=lambda m, i: m.t[i] >= (m.t[i - 1] if i else 0.0) + a[i]
                           - prefix[i] * m.c[i])
    m.segmax = pyo.Constraint(m.I, rule=lambda m, i: m.seg >= m.t[i])
    # Valid cuts: with R checkpoints, the other ≥ Σa − R·a_max bytes fall in R + 1 runs, so the
    # largest run is ≥ g(R) = (Σa + a_max)/(R + 1) − a_max, convex in R; its secants between
    # consecutive integers are valid for every integer R and tighten the LP bound to ~2√n.
    m.R = pyo.Var(bounds=(0, n))
    m.count = pyo.Constraint(expr=m.R == sum(m.c[i] for i in range(n)))
    a_max, total = max(a + [0.0]), sum(a)
    g = [(total + a_max) / (r + 1) - a_max for r in range(n + 1)]
    m.secant = pyo.ConstraintList()
    for r in range(n):
        if g[r] <= 0:
            break
        m.secant.add(m.seg >= g[r] + (g[r + 1] - g[r]) * (m.R - r))
    m.peak = pyo.Expression(expr=sum(a[i] * m.c[i] for i in range(n)) + m.seg)
    m.recompute = pyo.Expression(expr=sum(f[i] * (1 - m.c[i]) for i in range(n)))
    if objective == "recompute":
        if data.memory_budget_bytes is not None:
            m.budget = pyo.Constraint(expr=m.peak <= data.memory_budget_bytes / bs)
        m.obj = pyo.Objective(expr=m.recompute)
    elif objective == "memory":
        if recompute_budget_s is not None:
            m.budget = pyo.Constraint(expr=m.recompute <= recompute_budget_s / ts)
        m.obj = pyo.Objective(expr=m.peak)
    else:
        raise ValueError(f"objective must be 'recompute' or 'memory', not {objective!r}")
    return m


def _result(data: ChainData, m, info, build_s: float) -> CheckpointResult:
    import pyomo.environ as pyo

    kept = tuple(i for i in range(m.n) if pyo.value(m.c[i]) > 0.5)
    return CheckpointResult(
        status=info.status, mip_gap=info.mip_gap, checkpoints=kept,
        segments=segments_of(m.n, kept), peak_memory_bytes=peak_memory_bytes(data.output_bytes, kept),
        recompute_time_s=recompute_time_s(data.forward_time_s, kept), build_time_s=build_s,
        solve_time_s=info.solve_time_s)


def solve_min_memory(data: ChainData, recompute_budget_s: float | None = None,
                     time_limit_s: float = 60.0, mip_gap: float = 1e-6) -> CheckpointResult:
    """Least peak memory with recompute time ≤ ``recompute_budget_s`` (default: one extra forward)."""
    m, build_s = timed_build(build_model, data, objective="memory", recompute_budget_s=recompute_budget_s)
    info = solve_model(m, time_limit_s=time_limit_s, mip_gap=mip_gap, build_time_s=build_s)
    if info.status is SolveStatus.INFEASIBLE:
        raise InfeasibleError(f"Checkpointing cannot meet the recompute budget of {recompute_budget_s} s "
                              f"(it must be ≥ 0).")
    return _result(data, m, info, build_s)


def solve(data: ChainData, time_limit_s: float = 60.0, mip_gap: float = 1e-6) -> CheckpointResult:
    """Least recompute time whose peak fits ``data.memory_budget_bytes``.

    Raises :class:`InfeasibleError` naming the least budget (from :func:`solve_min_memory`)."""
    n = len(data.output_bytes)
    if n == 0:
        return CheckpointResult(SolveStatus.OPTIMAL, 0.0, (), (), 0.0, 0.0, 0.0, 0.0)
    m, build_s = timed_build(build_model, data)
    info = solve_model(m, time_limit_s=time_limit_s, mip_gap=mip_gap, build_time_s=build_s)
    if info.status is SolveStatus.INFEASIBLE:
        least = solve_min_memory(data, time_limit_s=time_limit_s).peak_memory_bytes
        raise InfeasibleError(infeasible_message("Checkpoint placement", "device memory",
                                                 data.memory_budget_bytes, least))
    return _result(data, m, info, build_s)


def sqrt_law_ratio(n: int) -> float:
    """chen_uniform_min_memory(n) / (2√n); tends to 1 as n grows (Chen §4)."""
    return chen_uniform_min_memory(n) / (2.0 * math.sqrt(n))
