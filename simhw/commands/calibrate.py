"""``simhw calibrate MEASUREMENTS.csv --hw NAME -o OUT.yaml``: fit efficiency constants."""
from __future__ import annotations

from .common import add_train_share_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit a spec's efficiency constants to measured kernel times",
        description="Fit the efficiency constants that the CSV's op kinds exercise (least squares on "
                    "log error, deterministic 70/30 split by row hash), report the held-back error before "
                    "and after, and write a spec that extends --hw and overrides only 'efficiency:'.")
    p.add_argument("file", metavar="MEASUREMENTS.csv")
    p.add_argument("--hw", required=True, metavar="NAME", help="base spec: shipped name, alias or YAML path")
    p.add_argument("-o", "--output", required=True, metavar="OUT.yaml", help="calibrated spec to write")
    p.add_argument("--name", default=None, help="name of the calibrated spec (default: <base>-calibrated)")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="FIELD",
                   help="efficiency field to fit (repeatable; default: those the CSV's kinds use)")
    add_train_share_option(p)
    p.add_argument("--max-rows", type=int, default=1500, help="most training rows used by the fit (default 1500)")
    p.set_defaults(run=run)


def run(args) -> int:
    import os
    import sys
    from pathlib import Path

    from ..calibrate import calibrate, calibrated_yaml, device_of
    from ..spec.load import load_hw, resolve_hw_path
    from ..spec.model import NodeSpec
    from ..validation import read_measurements
    from .common import write_bytes_atomic

    hw = load_hw(args.hw)
    rows, bad = read_measurements(args.file)
    result = calibrate(rows, hw, params=args.params or None, train_share=args.train_share,
                       max_fit_rows=max(10, args.max_rows))
    device = device_of(hw)
    out = Path(args.output)
    if isinstance(hw, NodeSpec):   # efficiency lives in the device: extend the node's device
        base_path = Path(device.path)
        base_ref = device.name
    else:
        base_path = resolve_hw_path(args.hw).resolve()
        base_ref = args.hw if "/" not in args.hw and not args.hw.endswith((".yaml", ".yml")) else \
            os.path.relpath(base_path, out.resolve().parent)
    name = args.name or f"{device.name}-calibrated"
    text = calibrated_yaml(result, base_ref, name, Path(args.file).name, device)
    write_bytes_atomic(out, text.encode("utf-8"))
    sys.stdout.write(result.report())
    if bad:
        sys.stdout.write(f"\n{len(bad)} unreadable row(s) skipped (first: line {bad[0].line}: {bad[0].reason}).\n")
    note = " (the efficiency of the node's device; point a node spec's 'device:' at it)" if isinstance(hw, NodeSpec) else ""
    sys.stdout.write(f"\nwrote {out}{note}\n")
    return 0
