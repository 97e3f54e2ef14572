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
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--worst", type=int, default=5, metavar="N", help="worst rows shown per kind (table)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..spec.load import load_hw
    from ..validation import render_table, validate
    from .common import write_output

    hw = load_hw(args.hw)
    result = validate(args.file, hw)
    if args.format == "json":
        text = json.dumps(result.to_dict(), indent=2, allow_nan=False, default=_nan_none)
    else:
        text = render_table(result, worst=max(0, args.worst))
    write_output(text, args.output)
    return 0


def _nan_none(value):
    return None
