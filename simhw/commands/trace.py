"""``simhw trace summarize|validate TRACE``: inspect a PyTorch profiler trace, or check simhw against it.

- ``summarize``: ops by kind with FLOPs and bytes computed from the recorded shapes, measured CPU
  and GPU time, the device, peak memory, and every op that could not be mapped.
- ``validate``: predicted vs measured GPU time per op kind on a CUDA trace (median and p90
  absolute percentage error over op occurrences).
Re-costing a trace on other hardware is ``simhw estimate TRACE --hw NAME``.
"""
from __future__ import annotations

import json
import sys

from .common import add_format_option, write_output


def register(sub) -> None:
    p = sub.add_parser("trace", help="summarize a PyTorch profiler trace or validate simhw against it",
                       description="Inspect a PyTorch profiler trace (Kineto Chrome-trace .json or .json.gz).")
    actions = p.add_subparsers(dest="trace_action", metavar="ACTION", parser_class=type(p))
    s = actions.add_parser("summarize", help="ops by kind: FLOPs, bytes, measured time; unmapped ops",
                           description="Summarize a profiler trace by op kind.")
    s.add_argument("trace", help="trace file (.json or .json.gz)")
    add_format_option(s, ("table", "json"))
    s.set_defaults(run=run_summarize)
    v = actions.add_parser("validate", help="predicted vs measured GPU time per op kind (CUDA traces)",
                           description="Compare simhw's per-op predictions with a CUDA trace's kernel times.")
    v.add_argument("trace", help="CUDA trace file (.json or .json.gz)")
    v.add_argument("--hw", required=True, metavar="NAME", help="hardware the trace was measured on (e.g. a100)")
    v.add_argument("--tf32", choices=("auto", "on", "off"), default="auto",
                   help="cost FP32 GEMMs as TF32: auto = when their kernels were TF32 (default)")
    add_format_option(v, ("table", "json", "csv"))
    v.set_defaults(run=run_validate)
    p.set_defaults(run=lambda args: (p.print_help(sys.stderr), 2)[1])


def run_summarize(args) -> int:
    from ..trace.summary import render_table, summarize

    summary = summarize(args.trace)
    text = json.dumps(summary, indent=2) if args.format == "json" else render_table(summary)
    write_output(text, args.output)
    return 0


def run_validate(args) -> int:
    from ..spec.load import load_hw
    from ..trace.cost import ape_table, validate_trace
    from ..trace.reader import load_trace
    from ..trace.cost import unmapped_report

    hw = load_hw(args.hw)
    trace = load_trace(args.trace)
    tf32 = {"auto": None, "on": True, "off": False}[args.tf32]
    df = validate_trace(trace, hw, tf32=tf32)
    stats = ape_table(df)
    unmapped = unmapped_report(trace)
    if args.format == "csv":
        text = df.to_csv(index=False)
    elif args.format == "json":
        text = json.dumps({"schema": "simhw.trace-validate/1", "trace": trace.path, "hardware": hw.name,
                           "kinds": stats.to_dict(orient="records"),
                           "unmapped_time_share": sum(u.share for u in unmapped)}, indent=2)
    else:
        text = _table(stats, trace, hw, unmapped)
    write_output(text, args.output)
    from ..trace.cost import _analysis
    for w in _analysis(trace).warnings:
        sys.stderr.write(f"simhw: warning: {w}\n")
    return 0


def _table(stats, trace, hw, unmapped) -> str:
    from ..report.fmt import seconds, table

    rows = [[r.kind, str(r.ops), seconds(r.predicted_s), seconds(r.measured_s),
             f"{r.predicted_s / r.measured_s:.2f}" if r.measured_s else "-",
             f"{100 * r.median_ape:.1f}%", f"{100 * r.p90_ape:.1f}%"] for r in stats.itertuples()]
    head = f"{trace.path}: measured on {trace.device_name()}, predicted on {hw.name}"
    body = table(rows, ["kind", "ops", "predicted", "measured", "pred/meas", "median APE", "p90 APE"]) if rows \
        else "(no costed op ran GPU kernels)"
    share = sum(u.share for u in unmapped)
    tail = f"not costed: {share:.1%} of measured GPU time ({len(unmapped)} op names; simhw trace summarize lists them)"
    return "\n".join([head, body, tail])
