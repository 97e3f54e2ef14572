"""Chrome trace JSON (the Trace Event Format) that Perfetto and chrome://tracing open.

One track (tid) per stream, complete events (``ph: "X"``) for tasks, and counter events
(``ph: "C"``) for memory pools. Times in the format are microseconds. Format: Google, "Trace Event
Format" (docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
"""
from __future__ import annotations

import json


def sim_to_chrome_trace(result) -> str:
    """A :class:`simhw.sim.run.SimResult` as Chrome trace JSON text."""
    tracks = sorted({t.resource for t in result.tasks}, key=lambda r: (r != "compute", r))
    tid = {name: i + 1 for i, name in enumerate(tracks)}
    events = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": f"{result.hardware}: {result.workload}"}}]
    for name, i in tid.items():
        events.append({"ph": "M", "pid": 1, "tid": i, "name": "thread_name", "args": {"name": name}})
        events.append({"ph": "M", "pid": 1, "tid": i, "name": "thread_sort_index", "args": {"sort_index": i}})
    for task in result.tasks:
        if task.end_s <= task.start_s:
            continue
        events.append({"ph": "X", "pid": 1, "tid": tid[task.resource], "name": task.name, "cat": task.resource,
                       "ts": task.start_s * 1e6, "dur": (task.end_s - task.start_s) * 1e6})
    for pool, (times, values) in result.memory_timeline.items():
        for t, v in zip(times, values):
            events.append({"ph": "C", "pid": 1, "name": f"memory.{pool}", "ts": float(t) * 1e6,
                           "args": {"GiB": float(v) / 2**30}})
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ms",
                       "otherData": {"plan": result.plan, "step_time_s": result.step_time_s}})
