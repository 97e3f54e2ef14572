"""Pure-Python reference core of :func:`simhw.sim.engine.simulate` (the readable specification).

It uses :mod:`heapq` with tuple keys ``(time, kind, priority, task)`` and a deque per resource.
``simhw.sim._numba_core`` implements the same rules with arrays and must return identical
results; ``tests/property/test_sim_engine_props.py`` checks that on random graphs.
"""
from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

END, READY = 0, 1  # at equal times, task ends are handled before tasks become ready


def run_core(duration_s, resource, priority, dep_ptr, succ_ptr, succ_idx, alloc_pool,
             alloc_bytes, free_pool, free_bytes, capacity_bytes, initial_bytes, n_resources):
    """Simulate; return ``(status, info, start, end, ready, mem_t, mem_p, mem_b, used)``.

    status 0 = done; 1 = stuck (``info`` = a task waiting for memory, or -1 if none waits, which
    means a dependency cycle); 2 = a free made a pool negative (``info`` = that task).
    """
    dur = duration_s.tolist()
    res = resource.tolist()
    prio = priority.tolist()
    a_pool, a_bytes = alloc_pool.tolist(), alloc_bytes.tolist()
    f_pool, f_bytes = free_pool.tolist(), free_bytes.tolist()
    cap = capacity_bytes.tolist()
    s_ptr, s_idx = succ_ptr.tolist(), succ_idx.tolist()
    n, n_pools = len(dur), len(cap)
    waiting = np.diff(dep_ptr).tolist()
    start, end, ready = [math.nan] * n, [math.nan] * n, [math.nan] * n
    used = initial_bytes.tolist()
    high = list(used)
    mem_t, mem_p, mem_b = [0.0] * n_pools, list(range(n_pools)), list(used)
    queue = [deque() for _ in range(n_resources)]
    busy = [False] * n_resources
    blocked = [[] for _ in range(n_pools)]  # resources whose first task waits for this pool
    is_blocked = [False] * n_resources

    heap = []
    for i in range(n):
        if waiting[i] == 0:
            ready[i] = 0.0
            heap.append((0.0, READY, prio[i], i))
    heapq.heapify(heap)
    finished = 0

    def result(status, info):
        return (status, info, np.array(start), np.array(end), np.array(ready),
                np.array(mem_t, np.float64), np.array(mem_p, np.int64),
                np.array(mem_b, np.float64), np.array(used, np.float64))

    while heap:
        now = heap[0][0]
        dirty = set()
        while heap and heap[0][0] == now:
            _, kind, _, i = heapq.heappop(heap)
            r = res[i]
            if kind == READY:
                queue[r].append(i)
                dirty.add(r)
                continue
            finished += 1
            busy[r] = False
            dirty.add(r)
            p = f_pool[i]
            if p >= 0 and f_bytes[i] > 0:
                used[p] -= f_bytes[i]
                mem_t.append(now)
                mem_p.append(p)
                mem_b.append(used[p])
                if used[p] < -1e-9 * max(high[p], 1.0):
                    return result(2, i)
                for q in blocked[p]:
                    is_blocked[q] = False
                    dirty.add(q)
                blocked[p].clear()
            for s in s_idx[s_ptr[i]:s_ptr[i + 1]]:
                waiting[s] -= 1
                if waiting[s] == 0:
                    ready[s] = now
                    heapq.heappush(heap, (now, READY, prio[s], s))
        heads = sorted((ready[queue[r][0]], prio[queue[r][0]], queue[r][0])
                       for r in dirty if not busy[r] and queue[r])
        for _, _, i in heads:
            r, p = res[i], a_pool[i]
            if p >= 0 and a_bytes[i] > 0:
                if used[p] + a_bytes[i] > cap[p]:
                    if not is_blocked[r]:
                        is_blocked[r] = True
                        blocked[p].append(r)
                    continue
                used[p] += a_bytes[i]
                high[p] = max(high[p], used[p])
                mem_t.append(now)
                mem_p.append(p)
                mem_b.append(used[p])
            queue[r].popleft()
            busy[r] = True
            start[i] = now
            end[i] = now + dur[i]
            heapq.heappush(heap, (end[i], END, prio[i], i))

    if finished < n:
        waits = sorted((ready[q[0]], prio[q[0]], q[0]) for r, q in enumerate(queue)
                       if q and not busy[r])
        return result(1, waits[0][2] if waits else -1)
    return result(0, -1)
