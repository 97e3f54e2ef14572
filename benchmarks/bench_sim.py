"""Speed of the event engine: tasks per second, numba core vs Python reference vs SimPy.

The model: ``chains`` chains of tasks spread over ``resources`` resources (chain c runs on
resource c mod resources); each task waits for its chain predecessor and for one random earlier
task of another chain (within the last 4·chains tasks). Durations are uniform in [0.5, 1.5) s.
The same model written with SimPy (``pip install simpy``): one process per task that waits for
its dependencies' done-events, requests its resource (``simpy.Resource``, FIFO), holds it for the
duration and fires its done-event. SimPy runs a smaller graph; rates are per task.

Usage: ``python benchmarks/bench_sim.py [--tasks 1000000] [--simpy-tasks 100000]``. Not a test.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simhw.sim.engine import TaskGraph, simulate  # noqa: E402


def chain_graph(n: int, chains: int, resources: int, seed: int = 0) -> TaskGraph:
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    prev = i - chains
    cross = i - 1 - rng.integers(0, 4 * chains, n)
    deps = np.stack([prev, cross], axis=1)
    deps[deps[:, 0] == deps[:, 1], 1] = -1
    valid = deps >= 0
    ptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
    return TaskGraph(duration_s=rng.uniform(0.5, 1.5, n), resource=(i % chains) % resources,
                     dep_ptr=ptr, dep_idx=deps[valid], n_resources=resources)


def run_simpy(g: TaskGraph) -> float:
    """Makespan of ``g`` simulated with SimPy."""
    import simpy

    env = simpy.Environment()
    res = [simpy.Resource(env, capacity=1) for _ in range(g.n_resources)]
    done = [env.event() for _ in range(g.n_tasks)]
    dur, rid, ptr, idx = (g.duration_s.tolist(), g.resource.tolist(), g.dep_ptr.tolist(),
                          g.dep_idx.tolist())

    def task(i):
        deps = [done[d] for d in idx[ptr[i]:ptr[i + 1]]]
        if deps:
            yield env.all_of(deps)
        with res[rid[i]].request() as req:
            yield req
            yield env.timeout(dur[i])
        done[i].succeed()

    for i in range(g.n_tasks):
        env.process(task(i))
    env.run()
    return env.now


def timed(fn, *args):
    """``(result, wall seconds, CPU seconds of this process)``; CPU time shows the cost when
    other jobs share the machine."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--simpy-tasks", type=int, default=100_000)
    ap.add_argument("--python-tasks", type=int, default=100_000)
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--resources", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    big = chain_graph(args.tasks, args.chains, args.resources)
    _, first_s, first_cpu = timed(simulate, big, "numba")  # import + compile or cache load
    runs = [timed(simulate, big, "numba")[1:] for _ in range(args.repeat)]
    rows = [("numba core (simulate)", args.tasks, *min(runs)),
            ("numba first call (incl. JIT/cache load)", args.tasks, first_s, first_cpu)]

    small = chain_graph(args.python_tasks, args.chains, args.resources)
    _, py_s, py_cpu = timed(simulate, small, "python")
    rows.append(("python reference", args.python_tasks, py_s, py_cpu))

    simpy_s = simpy_makespan = None
    try:
        sp_graph = chain_graph(args.simpy_tasks, args.chains, args.resources)
        simpy_makespan, simpy_s, simpy_cpu = timed(run_simpy, sp_graph)
        rows.append(("simpy 4 (same model)", args.simpy_tasks, simpy_s, simpy_cpu))
        ours = simulate(sp_graph, "numba").makespan_s
    except ImportError:
        print("simpy not installed: pip install simpy")

    print(f"# simhw.sim engine benchmark  ({platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, {os.cpu_count()} cpus)")
    print(f"# model: {args.chains} chains on {args.resources} resources, 1 random cross dep")
    print(f"# 1-min load average at the end: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg")
          else "")
    print(f"{'backend':42s} {'tasks':>10s} {'wall s':>8s} {'tasks/s':>12s} {'cpu s':>8s} "
          f"{'tasks/cpu-s':>12s}")
    rate = {}
    for name, n, wall, cpu in rows:
        rate[name] = n / wall
        print(f"{name:42s} {n:10d} {wall:8.3f} {n / wall:12,.0f} {cpu:8.3f} {n / cpu:12,.0f}")
    fast = rate["numba core (simulate)"]
    print(f"numba / python reference: {fast / rate['python reference']:.0f}x")
    if simpy_s is not None:
        print(f"numba / simpy: {fast / rate['simpy 4 (same model)']:.0f}x; makespan simpy "
              f"{simpy_makespan:.6f} s vs simhw {ours:.6f} s")


if __name__ == "__main__":
    main()
