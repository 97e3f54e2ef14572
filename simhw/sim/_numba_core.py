"""numba core of :func:`simhw.sim.engine.simulate`: the rules of ``_reference.py`` on flat arrays.

Heaps are four parallel arrays (time, kind, priority, task) sifted by hand. The event heap holds
only task ends; tasks made ready at an instant are sorted by (priority, id) and enqueued after
that instant's ends, which is where the reference's ready events fall. The per-resource FIFO
queues and the per-pool lists of blocked resources are linked lists in index arrays. Results are
bit-identical to the Python reference (same float operations in the same order).

Compiled with ``@njit(cache=True)`` (numba facts: ``../shared/research/ecosystem.md`` §4). When
neither the package directory nor numba's user cache directory is writable, numba cannot cache;
we then compile without caching and emit a RuntimeWarning. ``NUMBA_CACHE_DIR`` redirects the cache.
"""
from __future__ import annotations

import warnings

import numba
import numpy as np


def _jit(fn):
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available"
        warnings.warn(f"simhw.sim: numba cannot cache {fn.__name__} ({exc}); compiling on every "
                      "run. Set NUMBA_CACHE_DIR to a writable directory to avoid this.",
                      RuntimeWarning, stacklevel=2)
        return numba.njit(cache=False)(fn)


@_jit
def _enqueue(i, resource, q_head, q_tail, q_next, is_dirty, dirty, n_dirty):
    """Append ready task ``i`` to its resource's FIFO and mark the resource dirty; returns n_dirty."""
    r = resource[i]
    if q_tail[r] < 0:
        q_head[r] = i
    else:
        q_next[q_tail[r]] = i
    q_tail[r] = i
    if not is_dirty[r]:
        is_dirty[r] = True
        dirty[n_dirty] = r
        n_dirty += 1
    return n_dirty


@_jit
def _less(t1, k1, p1, i1, t2, k2, p2, i2):
    if t1 != t2:
        return t1 < t2
    if k1 != k2:
        return k1 < k2
    if p1 != p2:
        return p1 < p2
    return i1 < i2


@_jit
def _push(ht, hk, hp, hi, size, t, k, p, i):
    j = size
    while j > 0:
        up = (j - 1) >> 1
        if _less(t, k, p, i, ht[up], hk[up], hp[up], hi[up]):
            ht[j], hk[j], hp[j], hi[j] = ht[up], hk[up], hp[up], hi[up]
            j = up
        else:
            break
    ht[j], hk[j], hp[j], hi[j] = t, k, p, i
    return size + 1


@_jit
def _pop(ht, hk, hp, hi, size):
    """Remove the top entry (read it before calling); return the new size."""
    size -= 1
    t, k, p, i = ht[size], hk[size], hp[size], hi[size]
    j = 0
    while True:
        c = 2 * j + 1
        if c >= size:
            break
        if c + 1 < size and _less(ht[c + 1], hk[c + 1], hp[c + 1], hi[c + 1],
                                  ht[c], hk[c], hp[c], hi[c]):
            c += 1
        if _less(ht[c], hk[c], hp[c], hi[c], t, k, p, i):
            ht[j], hk[j], hp[j], hi[j] = ht[c], hk[c], hp[c], hi[c]
            j = c
        else:
            break
    ht[j], hk[j], hp[j], hi[j] = t, k, p, i
    return size


@_jit
def _before(priority, a, b):
    return priority[a] < priority[b] or (priority[a] == priority[b] and a < b)


@_jit
def _merge_pass(src, dst, k, width, priority):
    for lo in range(0, k, 2 * width):
        mid, hi = min(lo + width, k), min(lo + 2 * width, k)
        a, b = lo, mid
        for out in range(lo, hi):
            if a < mid and (b >= hi or not _before(priority, src[b], src[a])):
                dst[out] = src[a]
                a += 1
            else:
                dst[out] = src[b]
                b += 1


@_jit
def _sort_by_priority_then_id(buf, k, priority):
    """Sort ``buf[:k]`` (distinct task ids) by (priority, id) in place; bottom-up merge sort
    (hand-written: numba's generic sorts take seconds to compile)."""
    if k < 2:
        return
    tmp = np.empty(k, np.int64)
    width = 1
    in_tmp = False
    while width < k:
        if in_tmp:
            _merge_pass(tmp, buf, k, width, priority)
        else:
            _merge_pass(buf, tmp, k, width, priority)
        in_tmp = not in_tmp
        width *= 2
    if in_tmp:
        for i in range(k):
            buf[i] = tmp[i]


@_jit
def _filled(n, value):
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = value
    return out


@_jit
def _nans(n):
    out = np.empty(n)
    for i in range(n):
        out[i] = np.nan
    return out


@_jit
def _falses(n):
    out = np.empty(n, np.bool_)
    for i in range(n):
        out[i] = False
    return out


@_jit
def run_core(duration_s, resource, priority, dep_ptr, succ_ptr, succ_idx, alloc_pool,
             alloc_bytes, free_pool, free_bytes, capacity_bytes, initial_bytes, n_resources):
    """Same contract as ``simhw.sim._reference.run_core``."""
    n = duration_s.shape[0]
    n_pools = capacity_bytes.shape[0]
    n_res = max(n_resources, 1)
    waiting = np.empty(n, np.int64)
    for i in range(n):
        waiting[i] = dep_ptr[i + 1] - dep_ptr[i]
    start = _nans(n)
    end = _nans(n)
    ready = _nans(n)
    used = initial_bytes.copy()
    high = initial_bytes.copy()
    n_mem_max = n_pools + 2 * n
    mem_t = np.empty(n_mem_max)
    mem_p = np.empty(n_mem_max, np.int64)
    mem_b = np.empty(n_mem_max)
    for p in range(n_pools):
        mem_t[p], mem_p[p], mem_b[p] = 0.0, p, used[p]
    n_mem = n_pools
    # per-resource FIFO queue as a linked list through q_next
    q_head = _filled(n_res, -1)
    q_tail = _filled(n_res, -1)
    q_next = _filled(max(n, 1), -1)
    busy = _falses(n_res)
    # per-pool list of resources whose first task waits for memory there
    b_head = _filled(max(n_pools, 1), -1)
    b_next = _filled(n_res, -1)
    is_blocked = _falses(n_res)
    is_dirty = _falses(n_res)
    dirty = np.empty(n_res, np.int64)
    # event heap (time, kind, priority, task). Only task ends (kind 0) are pushed: tasks that
    # become ready at an instant are collected in ``fresh`` and enqueued after all ends at that
    # instant in (priority, id) order, which is the order in which the reference pops its
    # ready events (kind 1) from the same heap.
    fresh = np.empty(max(n, 1), np.int64)
    cap_h = max(n, 1)
    ht, hk = np.empty(cap_h), np.empty(cap_h, np.int64)
    hp, hi = np.empty(cap_h, np.int64), np.empty(cap_h, np.int64)
    # candidate heap (ready time, 0, priority, task) of queue heads, one per resource at most
    ct, ck = np.empty(n_res), _filled(n_res, 0)
    cp, ci = np.empty(n_res, np.int64), np.empty(n_res, np.int64)
    size = 0
    n_dirty = 0
    # Tasks without dependencies are ready at time 0. Enqueue them in (priority, id) order, which
    # is the order in which the reference pops their ready events, without growing the heap.
    roots = np.empty(max(n, 1), np.int64)
    n_roots = 0
    for i in range(n):
        if waiting[i] == 0:
            roots[n_roots] = i
            n_roots += 1
    _sort_by_priority_then_id(roots, n_roots, priority)
    for k in range(n_roots):
        i = roots[k]
        ready[i] = 0.0
        n_dirty = _enqueue(i, resource, q_head, q_tail, q_next, is_dirty, dirty, n_dirty)
    finished = 0
    now = 0.0

    while True:
        # start the first task of every idle resource that was touched, in order of that task
        n_cand = 0
        for d in range(n_dirty):
            r = dirty[d]
            is_dirty[r] = False
            h = q_head[r]
            if not busy[r] and h >= 0:
                n_cand = _push(ct, ck, cp, ci, n_cand, ready[h], 0, priority[h], h)
        while n_cand > 0:
            i = ci[0]
            n_cand = _pop(ct, ck, cp, ci, n_cand)
            r = resource[i]
            p = alloc_pool[i]
            if p >= 0 and alloc_bytes[i] > 0:
                if used[p] + alloc_bytes[i] > capacity_bytes[p]:
                    if not is_blocked[r]:
                        is_blocked[r] = True
                        b_next[r] = b_head[p]
                        b_head[p] = r
                    continue
                used[p] += alloc_bytes[i]
                high[p] = max(high[p], used[p])
                mem_t[n_mem], mem_p[n_mem], mem_b[n_mem] = now, p, used[p]
                n_mem += 1
            q_head[r] = q_next[i]
            if q_head[r] < 0:
                q_tail[r] = -1
            busy[r] = True
            start[i] = now
            end[i] = now + duration_s[i]
            size = _push(ht, hk, hp, hi, size, end[i], 0, priority[i], i)
        if size == 0:
            break
        # handle every event at the next instant: ends first, then tasks becoming ready
        now = ht[0]
        n_dirty = 0
        n_fresh = 0
        while size > 0 and ht[0] == now:
            i = hi[0]
            size = _pop(ht, hk, hp, hi, size)
            r = resource[i]
            if not is_dirty[r]:
                is_dirty[r] = True
                dirty[n_dirty] = r
                n_dirty += 1
            finished += 1
            busy[r] = False
            p = free_pool[i]
            if p >= 0 and free_bytes[i] > 0:
                used[p] -= free_bytes[i]
                mem_t[n_mem], mem_p[n_mem], mem_b[n_mem] = now, p, used[p]
                n_mem += 1
                if used[p] < -1e-9 * max(high[p], 1.0):
                    return (2, i, start, end, ready, mem_t[:n_mem], mem_p[:n_mem],
                            mem_b[:n_mem], used)
                q = b_head[p]
                while q >= 0:
                    is_blocked[q] = False
                    if not is_dirty[q]:
                        is_dirty[q] = True
                        dirty[n_dirty] = q
                        n_dirty += 1
                    q = b_next[q]
                b_head[p] = -1
            for e in range(succ_ptr[i], succ_ptr[i + 1]):
                s = succ_idx[e]
                waiting[s] -= 1
                if waiting[s] == 0:
                    ready[s] = now
                    fresh[n_fresh] = s
                    n_fresh += 1
        _sort_by_priority_then_id(fresh, n_fresh, priority)
        for k in range(n_fresh):
            i = fresh[k]
            n_dirty = _enqueue(i, resource, q_head, q_tail, q_next, is_dirty, dirty, n_dirty)

    info = -1
    if finished < n:
        n_cand = 0
        for r in range(n_resources):
            h = q_head[r]
            if not busy[r] and h >= 0:
                n_cand = _push(ct, ck, cp, ci, n_cand, ready[h], 0, priority[h], h)
        if n_cand > 0:
            info = ci[0]
        return (1, info, start, end, ready, mem_t[:n_mem], mem_p[:n_mem], mem_b[:n_mem], used)
    return (0, info, start, end, ready, mem_t[:n_mem], mem_p[:n_mem], mem_b[:n_mem], used)


@_jit
def successors_csr(dep_ptr, dep_idx):
    """Reverse CSR (counting sort): same output as ``TaskGraph.successors``, in O(n + edges)."""
    n = dep_ptr.shape[0] - 1
    succ_ptr = _filled(n + 1, 0)
    for e in range(dep_idx.shape[0]):
        succ_ptr[dep_idx[e] + 1] += 1
    for i in range(n):
        succ_ptr[i + 1] += succ_ptr[i]
    fill = succ_ptr[:-1].copy()
    succ_idx = np.empty(dep_idx.shape[0], np.int64)
    for i in range(n):
        for e in range(dep_ptr[i], dep_ptr[i + 1]):
            d = dep_idx[e]
            succ_idx[fill[d]] = i
            fill[d] += 1
    return succ_ptr, succ_idx
