"""Property tests of the event engine on random DAGs (hypothesis).

Invariants (DESIGN.md "How it is checked"): every task runs once and after its dependencies; a
resource never runs two tasks at once; memory never goes negative nor over capacity and frees
balance allocations; makespan >= critical path; the numba core equals the Python reference.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simhw.sim.engine import SimulationDeadlock, TaskGraph, simulate

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw, with_memory: bool = True, positive: bool = False):
    """Random DAG: deps point to earlier tasks; each allocation is freed by a later task that
    depends on the allocating one, so frees balance allocations."""
    n = draw(st.integers(1, 30))
    n_res = draw(st.integers(1, 4))
    n_pools = draw(st.integers(1, 2)) if with_memory else 0
    low = 1 if positive else 0
    durations = [float(draw(st.integers(low, 4))) / 2 for _ in range(n)]
    resource = [draw(st.integers(0, n_res - 1)) for _ in range(n)]
    priority = [draw(st.integers(-1, 1)) for _ in range(n)]
    deps = [sorted(set(draw(st.lists(st.integers(0, i - 1), max_size=3)))) if i else []
            for i in range(n)]
    alloc_pool, alloc_bytes = [-1] * n, [0.0] * n
    free_pool, free_bytes = [-1] * n, [0.0] * n
    if with_memory:
        for i in range(n - 1):
            if not draw(st.booleans()):
                continue
            j = draw(st.integers(i + 1, n - 1))
            if free_pool[j] >= 0:
                continue
            pool = draw(st.integers(0, n_pools - 1))
            nbytes = float(draw(st.integers(1, 8)))
            alloc_pool[i], alloc_bytes[i] = pool, nbytes
            free_pool[j], free_bytes[j] = pool, nbytes
            if i not in deps[j]:
                deps[j] = sorted(deps[j] + [i])
    need = max(alloc_bytes + [1.0])
    caps = [need * draw(st.sampled_from([1.0, 1.5, 3.0, 1e9])) for _ in range(n_pools)]
    ptr = np.cumsum([0] + [len(d) for d in deps])
    return TaskGraph(duration_s=durations, resource=resource, priority=priority, dep_ptr=ptr,
                     dep_idx=np.array([x for d in deps for x in d], np.int64),
                     n_resources=n_res, alloc_pool=alloc_pool, alloc_bytes=alloc_bytes,
                     free_pool=free_pool, free_bytes=free_bytes, pool_capacity_bytes=caps)


def _run_both(g: TaskGraph):
    """Both back ends; they must agree exactly, including on a deadlock."""
    try:
        ref = simulate(g, "python")
    except SimulationDeadlock as exc:
        try:
            simulate(g, "numba")
        except SimulationDeadlock as exc2:
            assert str(exc2) == str(exc)
            return None
        raise AssertionError("numba finished where the reference deadlocked")
    fast = simulate(g, "numba")
    for name in ("start_s", "end_s", "ready_s", "busy_s", "peak_bytes"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    for a, b in zip(fast.memory_time_s + fast.memory_bytes, ref.memory_time_s + ref.memory_bytes):
        np.testing.assert_array_equal(a, b)
    assert fast.makespan_s == ref.makespan_s
    return ref


def _critical_path(g: TaskGraph) -> float:
    finish = np.zeros(g.n_tasks)
    for i in range(g.n_tasks):  # deps point to earlier tasks
        before = [finish[d] for d in g.deps_of(i)]
        finish[i] = max(before, default=0.0) + g.duration_s[i]
    return float(finish.max(initial=0.0))


@SETTINGS
@given(dags())
def test_schedule_invariants_and_backends_agree(g):
    s = _run_both(g)
    if s is None:
        return
    # every task ran exactly once, for its duration, after its dependencies
    assert np.all(np.isfinite(s.start_s))
    np.testing.assert_array_equal(s.end_s, s.start_s + g.duration_s)
    for i in range(g.n_tasks):
        for d in g.deps_of(i):
            assert s.start_s[i] >= s.end_s[d]
            assert s.ready_s[i] >= s.end_s[d]
        assert s.start_s[i] >= s.ready_s[i]
    # one task at a time per resource
    for r in range(g.n_resources):
        mine = np.flatnonzero(g.resource == r)
        order = mine[np.lexsort((s.end_s[mine], s.start_s[mine]))]
        assert np.all(s.start_s[order][1:] >= s.end_s[order][:-1])
    np.testing.assert_allclose(s.busy_s, np.bincount(g.resource, g.duration_s, g.n_resources))
    # memory: never negative, never over capacity, balanced at the end
    for p in range(g.n_pools):
        assert np.all(s.memory_bytes[p] >= 0)
        assert np.all(s.memory_bytes[p] <= g.pool_capacity_bytes[p])
        assert s.memory_bytes[p][-1] == 0.0
        assert np.all(np.diff(s.memory_time_s[p]) >= 0)
        assert s.peak_bytes[p] == s.memory_bytes[p].max()
    # makespan bounds
    assert s.makespan_s >= _critical_path(g) - 1e-12
    assert s.makespan_s >= s.busy_s.max(initial=0.0)


@SETTINGS
@given(dags(with_memory=False, positive=True))
def test_without_memory_each_resource_is_a_fifo_list_scheduler(g):
    """No pools, positive durations: a resource runs its tasks in (ready, priority, id) order,
    each as soon as it is ready and the resource is free (never idle with work waiting)."""
    s = _run_both(g)
    for r in range(g.n_resources):
        mine = np.flatnonzero(g.resource == r)
        order = mine[np.lexsort((mine, g.priority[mine], s.ready_s[mine]))]
        np.testing.assert_array_equal(order, mine[np.argsort(s.start_s[mine], kind="stable")])
        free_at = 0.0
        for i in order:
            assert s.start_s[i] == max(free_at, s.ready_s[i])
            free_at = s.end_s[i]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_backends_agree_on_large_random_graphs(seed):
    """Thousands of tasks with ties and memory waits, larger than hypothesis builds by hand.

    About a third of the tasks allocate; a dedicated "release" stream frees each allocation
    after its task ends (like an offload copy), so squeezing the pool makes tasks wait but
    never deadlocks."""
    rng = np.random.default_rng(seed)
    n, n_res = int(rng.integers(500, 3000)), int(rng.integers(1, 5))
    ndeps = rng.integers(0, 3, n)
    ndeps[0] = 0
    ptr = np.concatenate([[0], np.cumsum(np.minimum(ndeps, np.arange(n)))])
    owner = np.repeat(np.arange(n), np.diff(ptr))
    idx = owner - 1 - (rng.integers(0, 20, ptr[-1]) % np.maximum(owner, 1))
    allocs = np.flatnonzero(rng.random(n) < 0.3)
    k = allocs.size
    alloc_bytes = np.zeros(n + k)
    alloc_bytes[allocs] = rng.integers(1, 5, k)
    arrays = dict(
        duration_s=np.concatenate([rng.integers(0, 4, n) * 0.25, rng.integers(1, 3, k) * 0.25]),
        resource=np.concatenate([rng.integers(0, n_res, n), np.full(k, n_res)]),
        priority=rng.integers(-1, 2, n + k),
        dep_ptr=np.concatenate([ptr, ptr[-1] + np.arange(1, k + 1)]),
        dep_idx=np.concatenate([idx, allocs]), n_resources=n_res + 1,
        alloc_pool=np.where(alloc_bytes > 0, 0, -1), alloc_bytes=alloc_bytes,
        free_pool=np.concatenate([np.full(n, -1), np.zeros(k)]),
        free_bytes=np.concatenate([np.zeros(n), alloc_bytes[allocs]]))
    unlimited = _run_both(TaskGraph(**arrays, pool_capacity_bytes=[np.inf]))
    cap = max(np.floor(unlimited.peak_bytes[0] * rng.uniform(0.3, 1.0)), 4.0)
    squeezed = _run_both(TaskGraph(**arrays, pool_capacity_bytes=[cap]))
    assert squeezed is not None
    assert squeezed.peak_bytes[0] <= cap
    assert squeezed.memory_bytes[0][-1] == 0.0
