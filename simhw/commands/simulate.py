"""``simhw simulate WORKLOAD --hw NAME [--plan PLAN] [--timeline OUT.json]``: event-driven step."""
from __future__ import annotations

from .common import add_set_option, write_bytes_atomic, write_output


def register(sub) -> None:
    p = sub.add_parser("simulate", help="event-driven simulation of one step: overlap, memory over time, timeline")
    p.add_argument("workload")
    p.add_argument("--hw", required=True, metavar="NAME")
    p.add_argument("--plan", default=None,
                   help="built-in plan (none, full-recompute, selective, cpu-offload, ssdtrain, memo) or a plan YAML "
                        "(default: the workload's own memory.recompute: none, selective or full-recompute)")
    p.add_argument("--timeline", metavar="OUT.json", help="write a Chrome trace (open in Perfetto)")
    p.add_argument("--pageable", action="store_true", help="host buffers are pageable, not pinned")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("-o", "--output", default=None, metavar="FILE")
    add_set_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import json
    from pathlib import Path

    from ..report.chrome_trace import sim_to_chrome_trace
    from ..report.fmt import gib, pct, seconds, table
    from ..schedule.plan import load_plan, workload_plan
    from ..sim.run import simulate_step
    from ..spec.load import load_hw
    from ..workload.from_yaml import load_workload

    wl = load_workload(args.workload, args.overrides)
    hw = load_hw(args.hw)
    if args.plan is None:      # the workload's own recompute, priced as its op graph runs it
        chosen = workload_plan(wl)
    elif args.plan == "memo":  # MEMO's alpha for this workload and machine (its LP), not a fixed one
        from ..schedule.from_workload import memo_plan
        chosen = memo_plan(wl, hw)
    else:
        chosen = load_plan(args.plan)
    res = simulate_step(wl, hw, chosen, pinned=not args.pageable)
    if args.timeline:
        write_bytes_atomic(Path(args.timeline), sim_to_chrome_trace(res).encode("utf-8"))
    if args.format == "json":
        write_output(json.dumps({"schema": "simhw.simulate/1", **res.to_dict(),
                                 "peak_memory_bytes": dict(res.peak_memory_bytes)}, indent=2), args.output)
        return 0
    rows = [["step time", seconds(res.step_time_s)], ["compute stream busy", seconds(res.compute_s)],
            ["exposed transfer", seconds(res.exposed_transfer_s)], ["pipeline bubble", pct(res.bubble_rate)]]
    if res.engine_s:
        rows.insert(3, ["waiting on the serving engine", seconds(res.engine_s)])
    if res.clock_scale < 1.0:
        rows.append(["clock at the power limit", pct(res.clock_scale)])
    rows += [[f"peak memory: {k}", gib(v)] for k, v in res.peak_memory_bytes.items() if v > 0]
    rows += [[f"utilisation: {k}", pct(v)] for k, v in res.utilisation.items()]
    if res.allocator is not None:
        rows += [["caching allocator: reserved peak", gib(res.allocator.reserved_peak_bytes)],
                 ["caching allocator: allocated peak", gib(res.allocator.allocated_peak_bytes)],
                 ["fragmentation (reserved - allocated)", gib(res.allocator.fragmentation_bytes)]]
    text = f"{res.workload} on {res.hardware}, plan {res.plan}\n" + table(rows, ["metric", "value"])
    write_output(text, args.output)
    return 0
