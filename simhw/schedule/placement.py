"""Memory placement (offline dynamic storage allocation) as a MIP, single level and bi-level.

MEMO's bi-level MIP (Zhao et al., arXiv 2407.12117, §4.2; ``seed-targets.md`` §2d): tensors with
sizes S_i and lifetimes [start, end) get offsets A_i minimising the peak address M::

    min M  s.t.  A_i + S_i ≤ M                              ∀ i
                 A_i + S_i ≤ A_j + z_ij · M_cap             ∀ (i, j) with overlapping lifetimes
                 A_j + S_j ≤ A_i + (1 − z_ij) · M_cap
                 A_i ≥ 0, z_ij ∈ {0, 1}

Level 1 places one layer's forward and backward tensors; level 2 places the whole model with each
layer replaced by one block sized by its level-1 peak (:func:`solve_bilevel`). The big-M M_cap is
derived from the data: the smaller of Σ S_i and the peak of a greedy first-fit placement (any
feasible peak bounds every offset). The max-live-bytes lower bound is added as a cut.
Fragmentation = placed peak − max live bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

from simhw.errors import InfeasibleError
from simhw.schedule.solve import (SolverLimitError, SolveStatus, infeasible_message, solve_model,
                                  timed_build)


@dataclass(frozen=True)
class TensorLifetime:
    name: str
    size_bytes: float
    start: int  # first step the tensor is live
    end: int  # first step it is no longer live (exclusive)


@dataclass(frozen=True)
class PlacementData:
    tensors: tuple[TensorLifetime, ...]
    capacity_bytes: float | None = None


@dataclass(frozen=True)
class PlacementResult:
    status: SolveStatus
    mip_gap: float | None
    offsets_bytes: tuple[float, ...]  # one per tensor, same order as the input
    peak_bytes: float
    max_live_bytes: float
    fragmentation_bytes: float
    build_time_s: float
    solve_time_s: float


def overlaps(a: TensorLifetime, b: TensorLifetime) -> bool:
    return a.start < b.end and b.start < a.end


def overlapping_pairs(tensors) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(tensors)) for j in range(i + 1, len(tensors))
            if overlaps(tensors[i], tensors[j])]


def max_live_bytes(tensors) -> float:
    """The largest total size of tensors live at one step (a lower bound on any placement's peak)."""
    events = sorted([(t.start, t.size_bytes) for t in tensors] + [(t.end, -t.size_bytes) for t in tensors],
                    key=lambda e: (e[0], e[1]))  # frees before allocations at the same step
    live = best = 0.0
    for _, delta in events:
        live += delta
        best = max(best, live)
    return best


def placed_peak_bytes(tensors, offsets) -> float:
    return max([o + t.size_bytes for o, t in zip(offsets, tensors)] + [0.0])


def is_valid_placement(tensors, offsets, tol: float = 1e-6) -> bool:
    """True when no two tensors with overlapping lifetimes overlap in address."""
    for i, j in overlapping_pairs(tensors):
        lo = max(offsets[i], offsets[j])
        hi = min(offsets[i] + tensors[i].size_bytes, offsets[j] + tensors[j].size_bytes)
        if hi - lo > tol * max(tensors[i].size_bytes, tensors[j].size_bytes, 1.0):
            return False
    return all(o >= -tol for o in offsets)


def greedy_offsets(tensors) -> tuple[float, ...]:
    """First fit, largest (then longest-lived) first: each tensor takes the lowest gap that fits."""
    order = sorted(range(len(tensors)),
                   key=lambda i: (-tensors[i].size_bytes, -(tensors[i].end - tensors[i].start), i))
    offsets: list[float | None] = [None] * len(tensors)
    for i in order:
        busy = sorted((offsets[j], offsets[j] + tensors[j].size_bytes) for j in range(len(tensors))
                      if offsets[j] is not None and overlaps(tensors[i], tensors[j]))
        candidate = 0.0
        for lo, hi in busy:
            if candidate + tensors[i].size_bytes <= lo:
                break
            candidate = max(candidate, hi)
        offsets[i] = candidate
    return tuple(offsets)


def build_model(data: PlacementData):
    """Build MEMO's placement MIP (pure, no solver), in bytes scaled by the largest tensor."""
    import pyomo.environ as pyo

    tensors = data.tensors
    scale = max([t.size_bytes for t in tensors] + [1.0])
    s = [t.size_bytes / scale for t in tensors]
    greedy = placed_peak_bytes(tensors, greedy_offsets(tensors)) / scale
    upper = min(sum(s), greedy)
    if data.capacity_bytes is not None:
        upper = min(upper, data.capacity_bytes / scale)
    big_m = max(upper, 0.0)  # any bound on the peak bounds every A_i + S_i
    lower = max_live_bytes(tensors) / scale
    pairs = overlapping_pairs(tensors)
    m = pyo.ConcreteModel(name="memo_placement")
    m.byte_scale, m.n = scale, len(tensors)
    m.I = pyo.RangeSet(0, len(tensors) - 1)
    m.E = pyo.Set(initialize=pairs, dimen=2, ordered=True)
    m.A = pyo.Var(m.I, bounds=lambda m, i: (0.0, max(big_m - s[i], 0.0)))
    m.M = pyo.Var(bounds=(0.0, None))
    m.z = pyo.Var(m.E, domain=pyo.Binary)
    m.top = pyo.Constraint(m.I, rule=lambda m, i: m.A[i] + s[i] <= m.M)
    m.below = pyo.Constraint(m.E, rule=lambda m, i, j: m.A[i] + s[i] <= m.A[j] + big_m * m.z[i, j])
    m.above = pyo.Constraint(m.E, rule=lambda m, i, j: m.A[j] + s[j] <= m.A[i] + big_m * (1 - m.z[i, j]))
    m.live_cut = pyo.Constraint(expr=m.M >= lower)
    m.cap = pyo.Constraint(expr=m.M <= upper)
    m.obj = pyo.Objective(expr=m.M)
    return m


def _empty_result() -> PlacementResult:
    return PlacementResult(SolveStatus.OPTIMAL, 0.0, (), 0.0, 0.0, 0.0, 0.0, 0.0)


def solve(data: PlacementData, time_limit_s: float = 10.0, mip_gap: float = 1e-6) -> PlacementResult:
    """Place the tensors; raise :class:`InfeasibleError` when the peak cannot fit ``capacity_bytes``.

    If the time limit ends the search before HiGHS finds an incumbent, the greedy placement is
    returned with status ``TIME_LIMIT`` and a gap measured against the max-live-bytes bound."""
    import pyomo.environ as pyo

    tensors = data.tensors
    if not tensors:
        return _empty_result()
    live = max_live_bytes(tensors)
    m, build_s = timed_build(build_model, data)
    try:
        info = solve_model(m, time_limit_s=time_limit_s, mip_gap=mip_gap, build_time_s=build_s)
    except SolverLimitError:  # no incumbent in time: fall back to the greedy placement (the MIP's bound)
        offsets = greedy_offsets(tensors)
        peak = placed_peak_bytes(tensors, offsets)
        if data.capacity_bytes is None or peak <= data.capacity_bytes:
            return PlacementResult(SolveStatus.TIME_LIMIT, (peak - live) / max(peak, 1e-300), offsets, peak,
                                   live, peak - live, build_s, time_limit_s)
        raise
    if info.status is SolveStatus.INFEASIBLE:
        least = solve(PlacementData(tensors), time_limit_s=time_limit_s, mip_gap=mip_gap)
        need = least.peak_bytes if least.status is SolveStatus.OPTIMAL else live
        raise InfeasibleError(infeasible_message("Memory placement", "device memory",
                                                 data.capacity_bytes, need))
    offsets = tuple(max(0.0, pyo.value(m.A[i])) * m.byte_scale for i in range(len(tensors)))
    peak = placed_peak_bytes(tensors, offsets)
    return PlacementResult(info.status, info.mip_gap, offsets, peak, live, peak - live, build_s,
                           info.solve_time_s)


# ---- bi-level (MEMO §4.2) -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerBlock:
    """One layer at level 2: its own tensors (level-1 steps, local to the layer) and its lifetime."""

    name: str
    tensors: tuple[TensorLifetime, ...]
    start: int
    end: int


@dataclass(frozen=True)
class BilevelData:
    blocks: tuple[LayerBlock, ...]
    global_tensors: tuple[TensorLifetime, ...] = ()  # level-2 tensors outside every layer
    capacity_bytes: float | None = None


@dataclass(frozen=True)
class BilevelResult:
    level1: tuple[PlacementResult, ...]  # one per block, offsets relative to the block's base
    level2: PlacementResult  # the blocks (sized by level-1 peaks) followed by the global tensors
    block_offsets_bytes: tuple[float, ...]
    peak_bytes: float
    max_live_bytes: float  # at level 2, blocks counted at their level-1 peak
    fragmentation_bytes: float  # level-2 peak − level-2 max live (level-1 waste is inside level1)


def solve_bilevel(data: BilevelData, time_limit_s: float = 10.0, mip_gap: float = 1e-6) -> BilevelResult:
    """MEMO §4.2: solve level 1 once per distinct layer, then level 2 with one block per layer."""
    cache: dict[tuple, PlacementResult] = {}
    level1 = []
    for block in data.blocks:
        if block.tensors not in cache:
            cache[block.tensors] = solve(PlacementData(block.tensors), time_limit_s, mip_gap)
        level1.append(cache[block.tensors])
    pseudo = tuple(TensorLifetime(b.name, r.peak_bytes, b.start, b.end) for b, r in zip(data.blocks, level1))
    level2 = solve(PlacementData(pseudo + tuple(data.global_tensors), data.capacity_bytes),
                   time_limit_s, mip_gap)
    return BilevelResult(tuple(level1), level2, level2.offsets_bytes[: len(pseudo)], level2.peak_bytes,
                         level2.max_live_bytes, level2.fragmentation_bytes)
