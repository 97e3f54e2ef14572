"""How CTAs share an SM's pipelines and the GPU's SMs: the p-norm of concurrent limits and the block
scheduler's makespans (used by cost/roofline.py's GEMM and attention models)."""
from __future__ import annotations

import heapq
import math


def overlap(times: tuple[float, ...], p: float) -> float:
    """Time of work limited by several pipelines at once: the p-norm of their times. Large p (> 50)
    is the max (perfect overlap); smaller p charges for the stalls each limit causes the others
    when their times are close (a max of two equal times becomes 2^(1/p) of it)."""
    if p > 50:
        return max(times)
    top = max(times)
    if top <= 0:
        return 0.0
    return top * sum((t / top) ** p for t in times) ** (1.0 / p)


def dispatch(durations: list[float], repeats: int, slots: int) -> float:
    """Makespan of ``repeats`` copies of the CTA sequence ``durations``, handed out in that order
    to whichever of ``slots`` slots frees first (the GPU's block scheduler)."""
    count = len(durations) * repeats
    if count <= slots:
        return max(durations)
    if count > _MAX_DISPATCH:   # large grids: list-scheduling bound plus the last CTA's length
        return sum(durations) * repeats / slots + durations[-1]
    free = [0.0] * slots
    for _ in range(repeats):
        for t in durations:
            heapq.heapreplace(free, free[0] + t)
    return max(free)


_MAX_DISPATCH = 200_000


def schedule(lengths: list[tuple[float, int]], slots: int) -> float:
    """Makespan of CTAs (duration, count) over ``slots`` concurrent slots: whole waves when all CTAs
    are equal, else longest-first list scheduling ~ max(longest, total / slots)."""
    count = sum(c for _, c in lengths)
    if count == 0:
        return 0.0
    longest = max(t for t, _ in lengths)
    if all(t == longest for t, _ in lengths):
        return math.ceil(count / slots) * longest
    total = sum(t * c for t, c in lengths)
    return max(longest, total / slots)
