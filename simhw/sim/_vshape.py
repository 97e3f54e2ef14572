"""V-shape schedules V-Half and V-Min from their repeating building blocks.

Source: Qi et al., "Pipeline Parallelism with Controllable Memory" (arXiv 2405.15362, NeurIPS
2024), §3-4: a schedule is a building block (where, on a grid of unit slots, each device runs the
passes of one micro-batch) repeated every 6 slots; the peak activation memory is set by the
block's lifespan. The block offsets and the two "squeeze" passes that tighten the warm-up and
cool-down follow the authors' scheduler, ``sail-sg/zero-bubble-pipeline-parallelism``
``megatron/core/pipeline_parallel/zerobubble/scheduler/zbv_greedy.py`` (``stable_pattern_v_half``,
``stable_pattern_v_min``, ``reorder``, ``put_w``), re-implemented here.

Grid rows per device: 0 = F of chunk 0 (flows device 0 -> p-1), 1 = F of chunk 1 (flows back
p-1 -> 0), 2 = B of chunk 1 (0 -> p-1), 3 = B of chunk 0 (p-1 -> 0); weight-gradient passes (W)
fill the empty slots, oldest backward first. Each F allocates one chunk of activations, each W
frees one. The result is only the order of passes on each device; timing comes from the engine.
"""
from __future__ import annotations

import numpy as np

from .engine import TaskGraphBuilder, simulate

BLOCK_SLOTS = 6  # F, f, B, b, W, w of one micro-batch: one slot each
_F0, _F1, _B1, _B0, _W = 0, 1, 2, 3, 4


def block_offsets(num_stages: int, variant: str) -> list[list[int]]:
    """Slot of rows 0..3 of micro-batch 0 on each device (micro-batch k adds 6k).

    The gaps between passes of one micro-batch set its lifespan, hence the activation memory:
    about p/2 micro-batches for V-Half and p/3 for V-Min (Qi et al. Fig. 4; zbv_greedy.py). The
    extra ``gap`` keeps two passes off the same slot modulo 6 for some p.
    """
    p = num_stages
    if variant == "v-half":
        gap = 3 if p % 2 == 0 else 0
        return [[2 * i, 3 * p - i - 2, 3 * p + gap + 2 * i - 1, 6 * p + gap - i - 2]
                for i in range(p)]
    if variant == "v-min":
        gap = 2 if p % 3 == 0 else 0
        return [[i, 2 * p - i - 1, 2 * p + gap + i, 4 * p + gap - i - 1] for i in range(p)]
    raise ValueError(f"unknown V-shape variant {variant!r}; expected v-half or v-min")


def _cells(rows: list[list[int]]) -> dict[int, tuple[int, int]]:
    """slot -> (row, micro-batch) for one device."""
    return {slot: (row, mb) for row, slots in enumerate(rows) for mb, slot in enumerate(slots)}


def _place_w(rows: list[list[int]], split: bool) -> list[list[int]]:
    """Append W rows: each empty slot takes the oldest pending W (chunk-1 W first when split)."""
    cells = _cells(rows[:4])
    last = max(cells)
    pending = [0, 0]
    w_rows: list[list[int]] = [[], []] if split else [[]]
    slot = 0
    while slot <= last or any(pending):
        if slot in cells:
            row = cells[slot][0]
            if row in (_B1, _B0):
                pending[row - _B1 if split else 0] += 1
        elif slot > last or any(pending):
            k = 0 if pending[0] else 1
            if pending[k]:
                w_rows[k].append(slot)
                pending[k] -= 1
        slot += 1
    return [list(r) for r in rows[:4]] + w_rows


def _peak(rows: list[list[int]]) -> int:
    """Peak chunks of activations held on one device (F +1; W, explicit or implied, -1)."""
    cells = _cells(rows)
    explicit_w = len(rows) > 4
    held = pending = peak = 0
    for slot in range(max(cells) + 1):
        if slot in cells:
            row = cells[slot][0]
            if row in (_F0, _F1):
                held += 1
            elif row in (_B1, _B0):
                pending += 1
            else:
                held -= 1
        elif not explicit_w and pending:
            pending -= 1
            held -= 1
        peak = max(peak, held)
    return peak


def _earliest(grid, s: int, row: int, mb: int) -> int:
    """First slot at which pass (row, mb) on device s may run, given its predecessors' slots."""
    p = len(grid)
    dep = -1
    if row in (_F0, _B1) and s > 0:
        dep = grid[s - 1][row][mb]
    if row in (_F1, _B0) and s + 1 < p:
        dep = max(dep, grid[s + 1][row][mb])
    if row in (_F1, _B1, _B0):
        dep = max(dep, grid[s][row - 1][mb])
    if row == _W:
        dep = max(dep, sorted(grid[s][_B1] + grid[s][_B0])[mb])
    if mb > 0:
        dep = max(dep, grid[s][row][mb - 1])
    return dep + 1


def _squeeze(grid: list[list[list[int]]], explicit_w: bool) -> list[list[list[int]]]:
    """Move passes of the warm-up (only if ``explicit_w``) and cool-down to earlier free slots.

    Passes are visited in slot order. The steady phase, from device 0's first chunk-0 backward to
    its last chunk-0 forward, keeps its slots. Other passes take the earliest free slot after
    their predecessors that keeps the device's peak memory within that of the unsqueezed grid.
    The grid is then compacted by running it with unit durations in the engine.
    """
    if explicit_w:
        grid = [_place_w(rows, split=False) for rows in grid]
    limit = max(_peak(rows) for rows in grid)
    m = len(grid[0][0])
    visits = sorted((slot, s, row, mb) for s, rows in enumerate(grid)
                    for row, slots in enumerate(rows) for mb, slot in enumerate(slots))
    taken: list[set[int]] = [set() for _ in grid]
    phase = 0
    for slot, s, row, mb in visits:
        if phase == 0 and s == 0 and row == _B0:
            phase = 1
        if phase == 1 or (phase == 0 and not explicit_w):
            if phase == 1 and row == _F0 and mb == m - 1:
                phase = 2
            taken[s].add(slot)
            continue
        for candidate in range(_earliest(grid, s, row, mb), slot):
            if candidate in taken[s]:
                continue
            grid[s][row][mb] = candidate
            if _peak(grid[s]) <= limit:
                break
        else:
            grid[s][row][mb] = slot
        taken[s].add(grid[s][row][mb])
    if not explicit_w:
        grid = [_place_w(rows, split=False) for rows in grid]
    return _compact(grid)


def _compact(grid: list[list[list[int]]]) -> list[list[list[int]]]:
    """Run each device's passes in slot order with unit durations; the start times are the new
    slots (the passes run as early as their predecessors allow)."""
    p = len(grid)
    b = TaskGraphBuilder(n_resources=p)
    ids: dict[tuple[int, int, int], int] = {}
    order = [sorted((slot, row, mb) for row, slots in enumerate(rows)
                    for mb, slot in enumerate(slots)) for rows in grid]
    flat = [(s, row, mb) for s in range(p) for _, row, mb in order[s]]
    for k, key in enumerate(flat):
        ids[key] = k
    prev = -1
    for k, (s, row, mb) in enumerate(flat):
        deps = [prev] if prev >= 0 and flat[prev][0] == s else []
        if row in (_F0, _B1) and s > 0:
            deps.append(ids[(s - 1, row, mb)])
        if row in (_F1, _B0) and s + 1 < p:
            deps.append(ids[(s + 1, row, mb)])
        if row in (_F1, _B1, _B0):
            deps.append(ids[(s, row - 1, mb)])
        b.add(1.0, resource=s, deps=deps)
        prev = k
    start = simulate(b.build(), backend="python").start_s
    out = [[[0] * len(slots) for slots in rows] for rows in grid]
    for k, (s, row, mb) in enumerate(flat):
        out[s][row][mb] = int(round(start[k]))
    return out


def v_orders(num_stages: int, num_microbatches: int, variant: str
             ) -> list[list[tuple[str, int, int]]]:
    """Per device, the passes ``(kind, chunk, micro-batch)`` of V-Half or V-Min in run order.

    ``kind`` is ``"F"``, ``"B"`` or ``"W"``; chunk 0 is the first half of the model (device d
    holds layers of stage d), chunk 1 the second half (stage 2p-1-d).
    """
    if num_stages < 2:
        raise ValueError("V-shape schedules need at least 2 stages")
    grid = [[[off + BLOCK_SLOTS * mb for mb in range(num_microbatches)] for off in offs]
            for offs in block_offsets(num_stages, variant)]
    grid = [rows[:4] for rows in _squeeze(grid, explicit_w=True)]
    grid = [rows[:4] for rows in _squeeze(grid, explicit_w=False)]
    names = {_F0: ("F", 0), _F1: ("F", 1), _B1: ("B", 1), _B0: ("B", 0), 4: ("W", 1), 5: ("W", 0)}
    orders = []
    for rows in grid:
        rows = _place_w(rows, split=True)
        cells = sorted((slot, row, mb) for row, slots in enumerate(rows)
                       for mb, slot in enumerate(slots))
        orders.append([(*names[row], mb) for _, row, mb in cells])
    return orders


def block_peak_chunks(num_stages: int, num_microbatches: int, variant: str) -> int:
    """Peak chunks held per device by the unsqueezed building-block grid (a cross-check)."""
    grid = [[[off + BLOCK_SLOTS * mb for mb in range(num_microbatches)] for off in offs]
            for offs in block_offsets(num_stages, variant)]
    return int(np.max([_peak(rows) for rows in grid]))
