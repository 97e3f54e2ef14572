"""Event-driven core of the simulator: tasks on resources, dependencies and memory pools.

The engine knows nothing about hardware. A :class:`TaskGraph` is plain arrays: per task a duration,
the resource it runs on (a compute stream, a copy engine, a link), a priority, the tasks it waits
for (CSR arrays) and the bytes it allocates in one memory pool when it starts and frees in one
pool when it ends. :func:`simulate` returns a :class:`Schedule`: start and end per task, makespan,
busy time per resource and memory over time per pool.

Rules (the same in both back ends, and what the property tests check):

- A task becomes *ready* when its last dependency ends. A resource runs one task at a time and
  takes its ready tasks in FIFO order of ``(ready_s, priority, task id)``; a lower priority value
  goes first. A resource is an in-order stream: if its first task does not fit in memory the
  resource waits (head-of-line blocking), exactly like a CUDA stream whose next copy waits for a
  free buffer. This is how a prefetch waits while device memory is full.
- A task allocates ``alloc_bytes`` in pool ``alloc_pool`` when it starts and frees ``free_bytes``
  in pool ``free_pool`` when it ends (``-1`` = no pool). It starts only if the pool's bytes in use
  plus its allocation stay within the pool's capacity; otherwise it waits for frees.
- Events live in one heap ordered by ``(time, kind, priority, task id)``: at equal times all task
  ends (kind 0) are handled before tasks become ready (kind 1), so frees at time t make room for
  starts at time t. After every instant, idle resources with ready tasks start their first task,
  resources visited in order of that task's ``(ready_s, priority, id)``.
- If work remains but no event is pending, either the dependencies contain a cycle
  (:class:`DependencyCycleError`, naming tasks on the cycle) or tasks wait for memory that nothing
  will ever free (:class:`SimulationDeadlock`).

The design follows SimPy's kernel (one heap, ties broken by priority then a sequence number;
``cristiklein/simpy:src/simpy/core.py``) with resources reduced to FIFO streams and memory to
counters. Back ends: ``simhw.sim._reference`` (pure Python, heapq; the readable specification) and
``simhw.sim._numba_core`` (``@njit(cache=True)``; identical results). :func:`simulate` picks numba
for graphs of at least :data:`NUMBA_MIN_TASKS` tasks; set ``SIMHW_SIM_BACKEND`` to ``python`` or
``numba`` to force one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import InfeasibleError, WorkloadError

NUMBA_MIN_TASKS = 100_000
"""Graphs with at least this many tasks run on the numba core when the back end is ``auto``.

The Python core runs about 0.1 M tasks/s; importing numba and loading the cached machine code
costs about 1 s (the very first, uncached compile several seconds), so below this size Python
is as fast end to end (benchmarks/bench_sim.py)."""

BACKEND_ENV = "SIMHW_SIM_BACKEND"

STATUS_OK, STATUS_STUCK, STATUS_NEGATIVE_MEMORY = 0, 1, 2


class SimulationDeadlock(InfeasibleError):
    """Tasks wait for memory that no running or future task will free."""


class DependencyCycleError(WorkloadError):
    """The task dependencies contain a cycle, so some tasks can never start."""


def _frozen_array(values, dtype, name: str, n: int | None = None) -> np.ndarray:
    arr = np.array(values, dtype=dtype, copy=True).reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"TaskGraph.{name} has {arr.shape[0]} entries, expected {n}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class TaskGraph:
    """Tasks, their resources, dependencies and memory effects, as read-only numpy arrays.

    ``dep_ptr``/``dep_idx`` are CSR: the dependencies of task ``i`` are
    ``dep_idx[dep_ptr[i]:dep_ptr[i + 1]]``. Pools are numbered ``0..n_pools-1`` with
    ``pool_capacity_bytes`` (``inf`` = unlimited) and ``pool_initial_bytes`` already in use at
    time 0. Build one with :class:`TaskGraphBuilder` or pass the arrays directly; every array is
    copied, checked and frozen.
    """

    duration_s: np.ndarray
    resource: np.ndarray
    dep_ptr: np.ndarray
    dep_idx: np.ndarray
    n_resources: int
    priority: np.ndarray | None = None
    alloc_pool: np.ndarray | None = None
    alloc_bytes: np.ndarray | None = None
    free_pool: np.ndarray | None = None
    free_bytes: np.ndarray | None = None
    pool_capacity_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pool_initial_bytes: np.ndarray | None = None

    def __post_init__(self) -> None:
        dur = _frozen_array(self.duration_s, np.float64, "duration_s")
        n = dur.shape[0]
        caps = _frozen_array(self.pool_capacity_bytes, np.float64, "pool_capacity_bytes")
        n_pools = caps.shape[0]
        init = self.pool_initial_bytes
        zero_i = np.zeros(n, np.int64)
        arrays = {
            "duration_s": dur,
            "resource": _frozen_array(self.resource, np.int64, "resource", n),
            "dep_ptr": _frozen_array(self.dep_ptr, np.int64, "dep_ptr", n + 1),
            "dep_idx": _frozen_array(self.dep_idx, np.int64, "dep_idx"),
            "priority": _frozen_array(zero_i if self.priority is None else self.priority,
                                      np.int64, "priority", n),
            "alloc_pool": _frozen_array(zero_i - 1 if self.alloc_pool is None else self.alloc_pool,
                                        np.int64, "alloc_pool", n),
            "alloc_bytes": _frozen_array(np.zeros(n) if self.alloc_bytes is None
                                         else self.alloc_bytes, np.float64, "alloc_bytes", n),
            "free_pool": _frozen_array(zero_i - 1 if self.free_pool is None else self.free_pool,
                                       np.int64, "free_pool", n),
            "free_bytes": _frozen_array(np.zeros(n) if self.free_bytes is None
                                        else self.free_bytes, np.float64, "free_bytes", n),
            "pool_capacity_bytes": caps,
            "pool_initial_bytes": _frozen_array(np.zeros(n_pools) if init is None else init,
                                                np.float64, "pool_initial_bytes", n_pools),
        }
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "n_resources", int(self.n_resources))
        self._check()

    def _check(self) -> None:
        n, n_pools = self.n_tasks, self.n_pools
        if not np.all(np.isfinite(self.duration_s)) or np.any(self.duration_s < 0):
            bad = int(np.flatnonzero(~(self.duration_s >= 0) | ~np.isfinite(self.duration_s))[0])
            raise ValueError(f"task {bad}: duration_s must be finite and >= 0, "
                             f"got {self.duration_s[bad]}")
        if n and (self.resource.min() < 0 or self.resource.max() >= self.n_resources):
            raise ValueError(f"resource ids must lie in [0, {self.n_resources})")
        ptr = self.dep_ptr
        if ptr[0] != 0 or ptr[-1] != self.dep_idx.shape[0] or np.any(np.diff(ptr) < 0):
            raise ValueError("dep_ptr must start at 0, never decrease and end at len(dep_idx)")
        if self.dep_idx.size and (self.dep_idx.min() < 0 or self.dep_idx.max() >= n):
            raise ValueError(f"dep_idx entries must be task ids in [0, {n})")
        for pool_name, bytes_name in (("alloc_pool", "alloc_bytes"), ("free_pool", "free_bytes")):
            pools, nbytes = getattr(self, pool_name), getattr(self, bytes_name)
            if n and (pools.min() < -1 or pools.max() >= n_pools):
                raise ValueError(f"{pool_name} entries must be -1 or pool ids in [0, {n_pools})")
            if not np.all(np.isfinite(nbytes)) or np.any(nbytes < 0):
                raise ValueError(f"{bytes_name} must be finite and >= 0")
        caps, init = self.pool_capacity_bytes, self.pool_initial_bytes
        if np.any(~(caps > 0)) or np.any(init < 0) or np.any(init > caps):
            raise ValueError("pool capacities must be > 0 and initial bytes in [0, capacity]")
        has_pool = self.alloc_pool >= 0
        too_big = has_pool & (self.alloc_bytes > caps[np.where(has_pool, self.alloc_pool, 0)]
                              if n_pools else False)
        if np.any(too_big):
            i = int(np.flatnonzero(too_big)[0])
            p = int(self.alloc_pool[i])
            raise InfeasibleError(
                f"task {i} allocates {self.alloc_bytes[i]:.6g} bytes in memory pool {p}, more than "
                f"its capacity of {caps[p]:.6g} bytes; raise the capacity or split the task.")

    @property
    def n_tasks(self) -> int:
        return int(self.duration_s.shape[0])

    @property
    def n_pools(self) -> int:
        return int(self.pool_capacity_bytes.shape[0])

    def deps_of(self, task: int) -> np.ndarray:
        """The tasks that ``task`` waits for."""
        return self.dep_idx[self.dep_ptr[task]:self.dep_ptr[task + 1]]

    def successors(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR arrays ``(succ_ptr, succ_idx)`` of the reverse edges, successors in task order."""
        n = self.n_tasks
        counts = np.diff(self.dep_ptr)
        owner = np.repeat(np.arange(n, dtype=np.int64), counts)
        order = np.argsort(self.dep_idx, kind="stable")
        succ_idx = owner[order]
        succ_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(self.dep_idx, minlength=n), out=succ_ptr[1:])
        return succ_ptr, succ_idx


class TaskGraphBuilder:
    """Collects tasks one by one and freezes them into a :class:`TaskGraph`.

    >>> b = TaskGraphBuilder(n_resources=1)
    >>> a = b.add(1.0, resource=0)
    >>> c = b.add(2.0, resource=0, deps=[a])
    >>> b.build().n_tasks
    2
    """

    def __init__(self, n_resources: int = 0, pool_capacity_bytes: Sequence[float] = (),
                 pool_initial_bytes: Sequence[float] | None = None) -> None:
        self.n_resources = n_resources
        self.pool_capacity_bytes = list(pool_capacity_bytes)
        self.pool_initial_bytes = None if pool_initial_bytes is None else list(pool_initial_bytes)
        self._cols: dict[str, list] = {k: [] for k in (
            "duration_s", "resource", "priority", "alloc_pool", "alloc_bytes", "free_pool",
            "free_bytes")}
        self._deps: list[int] = []
        self._ptr: list[int] = [0]

    def add_pool(self, capacity_bytes: float = float("inf")) -> int:
        """Add a memory pool and return its id."""
        self.pool_capacity_bytes.append(capacity_bytes)
        if self.pool_initial_bytes is not None:
            self.pool_initial_bytes.append(0.0)
        return len(self.pool_capacity_bytes) - 1

    def add_resource(self) -> int:
        """Add a resource and return its id."""
        self.n_resources += 1
        return self.n_resources - 1

    def add(self, duration_s: float, resource: int, deps: Iterable[int] = (), priority: int = 0,
            alloc: tuple[int, float] | None = None, free: tuple[int, float] | None = None) -> int:
        """Add a task and return its id; ``alloc``/``free`` are ``(pool, bytes)``."""
        c = self._cols
        c["duration_s"].append(duration_s)
        c["resource"].append(resource)
        c["priority"].append(priority)
        c["alloc_pool"].append(-1 if alloc is None else alloc[0])
        c["alloc_bytes"].append(0.0 if alloc is None else alloc[1])
        c["free_pool"].append(-1 if free is None else free[0])
        c["free_bytes"].append(0.0 if free is None else free[1])
        self._deps.extend(deps)
        self._ptr.append(len(self._deps))
        return len(self._ptr) - 2

    def add_dep(self, task: int, dep: int) -> None:
        """Make the most recently added ``task`` also wait for ``dep``."""
        if task != len(self._ptr) - 2:
            raise ValueError("add_dep only extends the most recently added task")
        self._deps.append(dep)
        self._ptr[-1] += 1

    def build(self) -> TaskGraph:
        return TaskGraph(dep_ptr=self._ptr, dep_idx=np.array(self._deps, np.int64),
                         n_resources=self.n_resources,
                         pool_capacity_bytes=np.array(self.pool_capacity_bytes, np.float64),
                         pool_initial_bytes=self.pool_initial_bytes, **self._cols)


@dataclass(frozen=True, eq=False)
class Schedule:
    """When each task ran, how busy each resource was and how memory evolved.

    ``memory_time_s[p]``/``memory_bytes[p]`` are the bytes in use in pool ``p`` after each change
    (a step function; the first point is the initial bytes at time 0; several points may share a
    time). ``peak_bytes[p]`` is the maximum over those points.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    ready_s: np.ndarray
    makespan_s: float
    busy_s: np.ndarray
    memory_time_s: tuple[np.ndarray, ...]
    memory_bytes: tuple[np.ndarray, ...]
    peak_bytes: np.ndarray
    backend: str

    def utilization(self) -> np.ndarray:
        """Busy time over makespan per resource (0 for an empty schedule)."""
        if self.makespan_s <= 0:
            return np.zeros_like(self.busy_s)
        return self.busy_s / self.makespan_s


def choose_backend(n_tasks: int, backend: str | None = None) -> str:
    """``python`` or ``numba``: the argument, else ``$SIMHW_SIM_BACKEND``, else by size."""
    choice = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if choice not in ("auto", "python", "numba"):
        raise ValueError(f"{BACKEND_ENV} / backend must be auto, python or numba, got {choice!r}")
    if choice == "auto":
        return "numba" if n_tasks >= NUMBA_MIN_TASKS else "python"
    return choice


def simulate(graph: TaskGraph, backend: str | None = None) -> Schedule:
    """Run ``graph`` to completion and return its :class:`Schedule`.

    Raises :class:`DependencyCycleError` for a dependency cycle, :class:`SimulationDeadlock` when
    tasks wait for memory that is never freed, and ``ValueError`` when frees exceed allocations
    (a pool's bytes in use would go negative).
    """
    which = choose_backend(graph.n_tasks, backend)
    if which == "numba":
        from ._numba_core import run_core, successors_csr
        succ_ptr, succ_idx = successors_csr(graph.dep_ptr, graph.dep_idx)
    else:
        from ._reference import run_core
        succ_ptr, succ_idx = graph.successors()
    args = (graph.duration_s, graph.resource, graph.priority, graph.dep_ptr, succ_ptr, succ_idx,
            graph.alloc_pool, graph.alloc_bytes, graph.free_pool, graph.free_bytes,
            graph.pool_capacity_bytes, graph.pool_initial_bytes, graph.n_resources)
    status, info, start, end, ready, mem_t, mem_p, mem_b, used = run_core(*args)
    if status == STATUS_NEGATIVE_MEMORY:
        p = int(graph.free_pool[info])
        raise ValueError(f"task {info} frees {graph.free_bytes[info]:.6g} bytes in memory pool {p}, "
                         f"leaving {used[p]:.6g} bytes in use: frees exceed allocations.")
    if status == STATUS_STUCK:
        cycle = find_cycle(graph)
        if cycle:
            shown = " -> ".join(str(t) for t in cycle[:20]) + (" ..." if len(cycle) > 20 else "")
            raise DependencyCycleError(
                f"task {cycle[0]} waits for itself through the dependency cycle {shown} -> "
                f"{cycle[0]} (each task waits for the next); remove one of these dependencies.")
        p = int(graph.alloc_pool[info])
        exc = SimulationDeadlock(
            f"task {info} waits to allocate {graph.alloc_bytes[info]:.6g} bytes in memory pool {p} "
            f"({used[p]:.6g} of {graph.pool_capacity_bytes[p]:.6g} bytes in use), but no running "
            "or future task frees memory there first; raise the capacity or free memory earlier.")
        exc.task, exc.pool, exc.used_bytes = int(info), p, float(used[p])   # callers name the item
        raise exc
    return _assemble(graph, np.asarray(start), np.asarray(end), np.asarray(ready),
                     np.asarray(mem_t), np.asarray(mem_p), np.asarray(mem_b), which)


def _assemble(graph: TaskGraph, start, end, ready, mem_t, mem_p, mem_b, backend) -> Schedule:
    busy = np.bincount(graph.resource, weights=graph.duration_s, minlength=graph.n_resources)
    order = np.argsort(mem_p, kind="stable")
    bounds = np.searchsorted(mem_p[order], np.arange(graph.n_pools + 1))
    times = tuple(mem_t[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:]))
    nbytes = tuple(mem_b[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:]))
    peak = np.array([b.max() for b in nbytes], np.float64)
    for arr in (start, end, ready, busy, peak, *times, *nbytes):
        arr.setflags(write=False)
    makespan = float(end.max()) if end.size else 0.0
    return Schedule(start_s=start, end_s=end, ready_s=ready, makespan_s=makespan, busy_s=busy,
                    memory_time_s=times, memory_bytes=nbytes, peak_bytes=peak, backend=backend)


def find_cycle(graph: TaskGraph) -> list[int]:
    """Tasks on one dependency cycle in order (each waits for the next), or ``[]`` if acyclic.

    Kahn's algorithm removes every task that can ever become ready; each remaining task still
    waits for a remaining task, so walking those waits from any of them must enter a cycle.
    """
    n = graph.n_tasks
    indeg = np.diff(graph.dep_ptr).astype(np.int64)
    succ_ptr, succ_idx = graph.successors()
    stack = list(np.flatnonzero(indeg == 0))
    removed = np.zeros(n, bool)
    while stack:
        i = stack.pop()
        removed[i] = True
        for s in succ_idx[succ_ptr[i]:succ_ptr[i + 1]]:
            indeg[s] -= 1
            if indeg[s] == 0:
                stack.append(s)
    if removed.all():
        return []
    task = int(np.flatnonzero(~removed)[0])
    seen: dict[int, int] = {}
    path: list[int] = []
    while task not in seen:
        seen[task] = len(path)
        path.append(task)
        task = int(next(d for d in graph.deps_of(task) if not removed[d]))
    return path[seen[task]:]
