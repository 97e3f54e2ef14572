"""``simhw compare WORKLOAD --hw A --hw B ...``: side-by-side estimate with ratios to the first."""
from __future__ import annotations

from .common import add_format_option, add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare one workload across hardware (speed-up, energy, cost ratios)")
    p.add_argument("workload")
    p.add_argument("--hw", action="append", required=True, metavar="NAME")
    add_set_option(p)
    add_format_option(p, ("table", "json", "csv"))
    p.set_defaults(run=run)


def run(args) -> int:
    from ..report.fmt import table
    from ..report.tables import estimate_csv, estimate_json, estimate_table
    from .estimate import estimate_many

    results = estimate_many(args.workload, args.hw, args.overrides)
    if args.format == "json":
        write_output(estimate_json(results), args.output)
        return 0
    if args.format == "csv":
        write_output(estimate_csv(results), args.output)
        return 0
    base = results[0]
    rows = [[r.hardware, f"{base.step_time_s / r.step_time_s:.2f}x", f"{r.energy_j / base.energy_j:.2f}x",
             f"{r.cost_usd / base.cost_usd:.2f}x" if base.cost_usd else "n/a",
             "yes" if r.memory.fits else "NO"] for r in results]
    text = estimate_table(results) + "\n\nrelative to " + base.hardware + ":\n" + table(
        rows, ["hardware", "speed-up", "energy", "cost", "fits"])
    write_output(text, args.output)
    import sys
    for r in results:      # e.g. a speed-up masked by the serving engine deserves a word
        for line in r.notes():
            sys.stderr.write(f"simhw: {line}\n")
    return 0
