"""``simhw validate FILE --hw NAME``: error of simhw's predictions against measured kernel times."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="compare predictions with measured kernel times (CSV)",
        description="Cost every row of a measurement CSV (kind, shape columns, measured_s; see "
                    "simhw/validation/schema.py) on --hw and print n, median and p90 absolute "
                    "percentage error and the bias per op kind. Convert public data sets with "
                    "validate/convert.py; measure your own GPU with validate/gpu/run_all.py.")
    p.add_argument("file", metavar="FILE", help="measurement CSV")
    p.add_argument("--hw", required=True, metavar="NAME", help="hardware spec name, alias or YAML path "
                   "(a node spec, e.g. dgx-a100, prices multi-node collectives)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (csv: one line per priced row with its prediction and error)")
    p.add_argument("--power", choices=("steady", "burst", "full"), default="burst",
                   help="the die's state under the power limit for rows without a 'power' cell and for "
                        "traces: burst (default; a benchmark loop or a capture seconds into a run), "
                        "steady (held at its sustained temperature) or full (no limit)")
    p.add_argument("--worst", type=int, default=5, metavar="N", help="worst rows shown per kind (table)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..spec.load import load_hw
    from ..validation import validate
    from ..workload.from_torch_trace import is_trace_path

    from ..cost.power import PowerState

    hw = load_hw(args.hw)
    power = PowerState(args.power)
    if is_trace_path(args.file):       # a CUDA profiler trace: its own kernel times are the measurements
        from ..validation.stats import trace_result

        result = trace_result(args.file, hw, power)
    else:
        result = validate(args.file, hw, power)
    _render(result, args)
    return 0


def _render(result, args) -> None:
    from ..validation import render_table
    from .common import write_output

    if args.format == "json":
        text = json.dumps(result.to_dict(), indent=2, allow_nan=False, default=_nan_none)
    elif args.format == "csv":
        text = _rows_csv(result)
    else:
        text = render_table(result, worst=max(0, args.worst))
    write_output(text, args.output)


def _rows_csv(result) -> str:
    """Every priced row: where it came from, measured and predicted seconds, signed error."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["line", "kind", "source", "label", "measured_s", "predicted_s", "error"])
    for r in result.rows:
        w.writerow([r.line, r.kind, r.source, r.label, f"{r.measured_s:.6g}", f"{r.predicted_s:.6g}", f"{r.error:.6g}"])
    return buf.getvalue()


def _nan_none(value):
    return None
