"""Unit tests of the event engine (simhw.sim.engine): ordering, memory waits, errors."""
from __future__ import annotations

import numpy as np
import pytest

from simhw.errors import InfeasibleError, WorkloadError
from simhw.sim.engine import (NUMBA_MIN_TASKS, DependencyCycleError, SimulationDeadlock,
                              TaskGraph, TaskGraphBuilder, choose_backend, find_cycle, simulate)

BACKENDS = ["python", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_chain_and_parallel_resources(backend):
    b = TaskGraphBuilder(n_resources=2)
    a = b.add(1.0, 0)
    c = b.add(2.0, 1)
    d = b.add(0.5, 0, deps=[a, c])
    s = simulate(b.build(), backend)
    assert list(s.start_s) == [0.0, 0.0, 2.0]
    assert list(s.end_s) == [1.0, 2.0, 2.5]
    assert s.makespan_s == 2.5
    assert list(s.busy_s) == [1.5, 2.0]
    assert list(s.ready_s) == [0.0, 0.0, 2.0]
    assert s.utilization() == pytest.approx([0.6, 0.8])
    assert s.backend == backend
    assert d == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_fifo_by_ready_time_then_priority_then_id(backend):
    b = TaskGraphBuilder(n_resources=2)
    gate = b.add(1.0, 1)                       # 0
    late = b.add(1.0, 0, deps=[gate])          # 1: ready at 1
    b.add(3.0, 0)                              # 2: ready at 0, runs first
    b.add(1.0, 0, priority=-1)                 # 3: ready at 0, lower priority value: before 2
    b.add(1.0, 0, priority=-1)                 # 4: same key as 3 but larger id
    s = simulate(b.build(), backend)
    assert list(s.start_s[[3, 4, 2, late]]) == [0.0, 1.0, 2.0, 5.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_prefetch_waits_for_memory_freed_at_same_instant(backend):
    # pool of 10 B: compute holds 6 B until t=3; a 6 B prefetch on the copy engine waits.
    b = TaskGraphBuilder(n_resources=2, pool_capacity_bytes=[10.0])
    hold = b.add(3.0, 0, alloc=(0, 6.0), free=(0, 6.0))
    pre = b.add(1.0, 1, alloc=(0, 6.0))
    use = b.add(1.0, 0, deps=[pre], free=(0, 6.0))
    s = simulate(b.build(), backend)
    assert s.start_s[pre] == 3.0          # frees at t=3 are handled before starts at t=3
    assert s.end_s[use] == 5.0
    assert s.peak_bytes[0] == 6.0
    assert list(s.memory_time_s[0]) == [0.0, 0.0, 3.0, 3.0, 5.0]
    assert list(s.memory_bytes[0]) == [0.0, 6.0, 0.0, 6.0, 0.0]
    assert hold == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_head_of_line_blocking_is_in_order(backend):
    # Resource 0 is an in-order stream: task 1 (too big now) blocks task 2 (would fit).
    b = TaskGraphBuilder(n_resources=2, pool_capacity_bytes=[10.0])
    b.add(2.0, 1, alloc=(0, 8.0), free=(0, 8.0))
    b.add(1.0, 0, alloc=(0, 5.0), free=(0, 5.0))
    b.add(1.0, 0, alloc=(0, 1.0), free=(0, 1.0))
    s = simulate(b.build(), backend)
    assert list(s.start_s) == [0.0, 2.0, 3.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_deadlock_is_reported(backend):
    b = TaskGraphBuilder(n_resources=1, pool_capacity_bytes=[10.0])
    b.add(1.0, 0, alloc=(0, 6.0))
    b.add(1.0, 0, alloc=(0, 6.0))
    with pytest.raises(SimulationDeadlock, match=r"task 1 waits to allocate 6 bytes in memory "
                                                 r"pool 0 \(6 of 10"):
        simulate(b.build(), backend)
    assert issubclass(SimulationDeadlock, InfeasibleError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cycle_is_reported_with_its_tasks(backend):
    # 0 <- 1 <- 2 <- 3 <- 1 : tasks 1, 2, 3 form the cycle; 4 depends on it
    g = TaskGraph(duration_s=[1.0] * 5, resource=[0] * 5, dep_ptr=[0, 0, 2, 3, 4, 5],
                  dep_idx=[0, 3, 1, 2, 3], n_resources=1)
    with pytest.raises(DependencyCycleError, match=r"task [123] waits for itself") as info:
        simulate(g, backend)
    assert isinstance(info.value, WorkloadError)
    assert sorted(find_cycle(g)) == [1, 2, 3]


def test_self_dependency_is_a_cycle():
    g = TaskGraph(duration_s=[1.0], resource=[0], dep_ptr=[0, 1], dep_idx=[0], n_resources=1)
    assert find_cycle(g) == [0]
    with pytest.raises(DependencyCycleError, match="task 0"):
        simulate(g)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frees_beyond_allocations_raise(backend):
    b = TaskGraphBuilder(n_resources=1, pool_capacity_bytes=[10.0])
    b.add(1.0, 0, alloc=(0, 2.0))
    b.add(1.0, 0, free=(0, 3.0))
    with pytest.raises(ValueError, match="frees exceed allocations"):
        simulate(b.build(), backend)


def test_allocation_larger_than_capacity_is_infeasible_at_build():
    b = TaskGraphBuilder(n_resources=1, pool_capacity_bytes=[10.0])
    b.add(1.0, 0, alloc=(0, 11.0))
    with pytest.raises(InfeasibleError, match="task 0 allocates 11 bytes in memory pool 0"):
        b.build()


@pytest.mark.parametrize("kwargs, match", [
    (dict(duration_s=[-1.0]), "duration_s"),
    (dict(duration_s=[np.nan]), "duration_s"),
    (dict(resource=[3]), "resource ids"),
    (dict(dep_ptr=[0, 2], dep_idx=[0]), "dep_ptr"),
    (dict(dep_ptr=[0, 1], dep_idx=[5]), "dep_idx"),
    (dict(alloc_pool=[2]), "alloc_pool"),
    (dict(alloc_pool=[0], alloc_bytes=[-1.0]), "alloc_bytes"),
    (dict(pool_capacity_bytes=[0.0]), "capacities"),
    (dict(resource=[0, 0]), "expected 1"),
])
def test_malformed_graphs_are_rejected(kwargs, match):
    base = dict(duration_s=[1.0], resource=[0], dep_ptr=[0, 0], dep_idx=[], n_resources=1,
                pool_capacity_bytes=[1.0])
    with pytest.raises(ValueError, match=match):
        TaskGraph(**{**base, **kwargs})


def test_graph_arrays_are_frozen_copies():
    dur = np.array([1.0, 2.0])
    g = TaskGraph(duration_s=dur, resource=[0, 0], dep_ptr=[0, 0, 1], dep_idx=[0],
                  n_resources=1)
    dur[0] = 5.0
    assert g.duration_s[0] == 1.0
    with pytest.raises(ValueError):
        g.duration_s[0] = 3.0
    assert list(g.deps_of(1)) == [0]
    sp, si = g.successors()
    assert list(sp) == [0, 1, 1] and list(si) == [1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_graph_and_zero_durations(backend):
    g = TaskGraph(duration_s=[], resource=[], dep_ptr=[0], dep_idx=[], n_resources=0)
    assert simulate(g, backend).makespan_s == 0.0
    b = TaskGraphBuilder(n_resources=1)
    a = b.add(0.0, 0)
    b.add(0.0, 0, deps=[a])
    s = simulate(b.build(), backend)
    assert list(s.end_s) == [0.0, 0.0]


def test_initial_pool_bytes_count_and_pools_without_tasks():
    b = TaskGraphBuilder(n_resources=1, pool_capacity_bytes=[10.0, 5.0],
                         pool_initial_bytes=[4.0, 1.0])
    b.add(1.0, 0, alloc=(0, 6.0), free=(0, 6.0))
    b.add(1.0, 0, alloc=(0, 7.0))  # 4 + 7 > 10: never fits
    with pytest.raises(SimulationDeadlock):
        simulate(b.build())
    b = TaskGraphBuilder(n_resources=1, pool_capacity_bytes=[10.0, 5.0],
                         pool_initial_bytes=[4.0, 1.0])
    b.add(1.0, 0, alloc=(0, 6.0), free=(0, 6.0))
    s = simulate(b.build())
    assert list(s.peak_bytes) == [10.0, 1.0]
    assert list(s.memory_bytes[1]) == [1.0]


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("SIMHW_SIM_BACKEND", raising=False)
    assert choose_backend(10) == "python"
    assert choose_backend(NUMBA_MIN_TASKS) == "numba"
    monkeypatch.setenv("SIMHW_SIM_BACKEND", "numba")
    assert choose_backend(10) == "numba"
    assert choose_backend(10, "python") == "python"
    monkeypatch.setenv("SIMHW_SIM_BACKEND", "fast")
    with pytest.raises(ValueError, match="auto, python or numba"):
        choose_backend(10)


def _double(x):
    return 2 * x


def test_numba_without_any_cache_location_compiles_uncached(monkeypatch):
    """With no writable cache location numba cannot cache: ``_jit`` warns and compiles anyway."""
    import numba.core.caching as caching

    from simhw.sim import _numba_core

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    with pytest.warns(RuntimeWarning, match="cannot cache _double"):
        fast = _numba_core._jit(_double)
    assert fast(21) == 42
