"""``simhw calibrate-engine ITERATIONS.csv --hw NAME -o ENGINE.yaml``: fit a serving engine's overheads."""
from __future__ import annotations

from .common import add_train_share_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate-engine", help="fit a serving engine's overheads to measured iteration times",
        description="Fit step_overhead, per_sequence, host_per_layer and per_worker (docs/workloads.md) to "
                    "measured prefill and decode iteration times (CSV columns: model, mode, tp, batch, tokens, "
                    "measured_s; pp and dtype optional), report the held-back error with the spec's engine "
                    "and the fitted one, and write an engine: block for workloads.")
    p.add_argument("file", metavar="ITERATIONS.csv")
    p.add_argument("--hw", required=True, metavar="NAME", help="spec the iterations ran on")
    p.add_argument("-o", "--output", required=True, metavar="ENGINE.yaml", help="engine block to write")
    add_train_share_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from ..engine_fit import cost_iterations, fit_engine, read_iterations
    from ..spec.load import load_hw
    from .common import write_bytes_atomic

    hw = load_hw(args.hw)
    rows = cost_iterations(read_iterations(args.file), hw)
    result = fit_engine(rows, args.train_share)
    write_bytes_atomic(Path(args.output), result.yaml(Path(args.file).name, args.hw).encode("utf-8"))
    sys.stdout.write(result.report() + f"wrote {args.output}\n")
    return 0
