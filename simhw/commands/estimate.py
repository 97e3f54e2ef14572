"""``simhw estimate WORKLOAD --hw NAME [--hw NAME ...]``: cost a workload on one or more machines."""
from __future__ import annotations

from .common import add_format_option, add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser("estimate", help="time, throughput, MFU, memory, energy and dollars of a workload",
                       description="Cost a workload YAML (or a PyTorch profiler trace) on hardware.")
    p.add_argument("workload", help="workload YAML (workloads/*.yaml) or PyTorch trace (.json/.json.gz)")
    p.add_argument("--hw", action="append", required=True, metavar="NAME",
                   help="hardware: a shipped name (simhw hw list) or a spec YAML path; repeat to compare")
    p.add_argument("--ops", action="store_true", help="also list every op (time, bound, intensity)")
    p.add_argument("--power", choices=("auto", "steady", "burst", "full"), default="auto",
                   help="the die's state under the power limit: auto (default: steady for training, burst "
                        "for serving), steady (held at its sustained temperature, as in runs of minutes "
                        "at the limit), burst (near idle temperature: the first second of a run) or full "
                        "(no power limit)")
    add_set_option(p)
    add_format_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..report.tables import estimate_csv, estimate_json, estimate_table

    results = estimate_many(args.workload, args.hw, args.overrides, ops=args.ops, power=args.power)
    render = {"table": lambda: estimate_table(results, ops=args.ops),
              "json": lambda: estimate_json(results, ops=args.ops),
              "csv": lambda: estimate_csv(results)}[args.format]
    write_output(render(), args.output)
    import sys
    for r in results:      # traces: what could not be costed; workloads: e.g. an engine-bound serving step
        for line in r.notes():
            sys.stderr.write(f"simhw: {line}\n")
    return 0


def estimate_many(workload_path: str, hw_names, overrides=(), ops: bool = False, power: str = "auto"):
    """Load once, cost on every hardware (shared by estimate, compare and report); ``power``: a
    cost.power.PowerState value, or auto (by the workload's mode; traces: steady)."""
    from ..cost.estimate import estimate
    from ..cost.power import PowerState
    from ..spec.load import load_hw
    from ..workload.from_yaml import load_workload

    hws = [load_hw(name) for name in hw_names]
    state = None if power == "auto" else PowerState(power)
    if _is_trace(workload_path):
        from ..errors import WorkloadError
        from ..workload.from_torch_trace import estimate_trace, load_trace

        if overrides:
            raise WorkloadError("--set does not apply to a profiler trace; it has no workload fields.")
        trace = load_trace(workload_path)
        return [estimate_trace(trace, hw, ops=ops, power=state) for hw in hws]
    wl = load_workload(workload_path, overrides)
    return [estimate(wl, hw, ops=ops, power=state) for hw in hws]


def _is_trace(path: str) -> bool:
    return str(path).endswith((".json", ".json.gz"))
