"""``simhw calibrate MEASUREMENTS.csv --hw NAME -o OUT.yaml``: fit efficiency constants."""
from __future__ import annotations

from .common import add_train_share_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit a spec's efficiency constants to measured kernel times",
        description="Fit the efficiency constants that the CSV's op kinds exercise (least squares on "
                    "log error, deterministic 70/30 split by row hash), report the held-back error before "
                    "and after, and write a spec that extends --hw and overrides only 'efficiency:'. With a node "
                    "spec and collectives across nodes, the node's network bandwidth and latency (and, when "
                    "the rows vary the ranks per node, its NIC count) are fitted "
                    "too, and OUT is a node spec whose device is written beside it (OUT-device.yaml).")
    p.add_argument("file", metavar="MEASUREMENTS.csv")
    p.add_argument("--hw", required=True, metavar="NAME", help="base spec: shipped name, alias or YAML path")
    p.add_argument("-o", "--output", required=True, metavar="OUT.yaml", help="calibrated spec to write")
    p.add_argument("--name", default=None, help="name of the calibrated spec (default: <base>-calibrated)")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="FIELD",
                   help="efficiency field to fit, or network_bandwidth_bytes_per_s / network_latency_s / network_nics "
                        "(repeatable; default: those the CSV's kinds use)")
    add_train_share_option(p)
    p.add_argument("--max-rows", type=int, default=1500, help="most training rows used by the fit (default 1500)")
    p.set_defaults(run=run)


def run(args) -> int:
    import os
    import sys
    from pathlib import Path

    from ..calibrate import calibrate, calibrated_node_yaml, calibrated_yaml, device_of
    from ..errors import SpecError
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

    def ref(spec_name: str, spec_path: Path) -> str:   # a shipped name, or a path relative to out
        return spec_name if "/" not in args.hw and not args.hw.endswith((".yaml", ".yml")) else \
            os.path.relpath(spec_path, out.resolve().parent)

    measured = Path(args.file).name
    if isinstance(hw, NodeSpec):   # efficiency lives in the device: OUT is the node, its device beside it
        dev_out = out.with_name(f"{out.stem}-device{out.suffix or '.yaml'}")
        try:
            shipped = resolve_hw_path(device.name).resolve() == Path(device.path).resolve()
        except SpecError:   # a device known only by its file
            shipped = False
        dev_ref = device.name if shipped else os.path.relpath(device.path, out.resolve().parent)
        dev_text = calibrated_yaml(result, dev_ref, f"{args.name or hw.name + '-calibrated'}-device",
                                   measured, device)
        node_text = calibrated_node_yaml(result, ref(hw.name, Path(hw.path)), dev_out.name,
                                         args.name or f"{hw.name}-calibrated", measured, hw)
        write_bytes_atomic(dev_out, dev_text.encode("utf-8"))
        write_bytes_atomic(out, node_text.encode("utf-8"))
        written = f"{out} (node) and {dev_out} (its device)"
    else:
        base_ref = ref(args.hw, resolve_hw_path(args.hw).resolve())
        text = calibrated_yaml(result, base_ref, args.name or f"{device.name}-calibrated", measured, device)
        write_bytes_atomic(out, text.encode("utf-8"))
        written = str(out)
    sys.stdout.write(result.report())
    if bad:
        sys.stdout.write(f"\n{len(bad)} unreadable row(s) skipped (first: line {bad[0].line}: {bad[0].reason}).\n")
    sys.stdout.write(f"\nwrote {written}\n")
    return 0
