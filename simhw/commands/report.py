"""``simhw report WORKLOAD --hw A --hw B ... -o reports/NAME.pdf``: a multi-page PDF report."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import add_set_option


def register(sub) -> None:
    p = sub.add_parser("report", help="PDF report: summary, time and memory breakdowns, op kinds, rooflines",
                       description="Cost a workload on one or more machines and write a multi-page PDF "
                                   "(summary table, time breakdown, memory vs capacity, op-kind share and "
                                   "rooflines, workload fields and hardware sources).")
    p.add_argument("workload", help="workload YAML (workloads/*.yaml) or PyTorch trace (.json/.json.gz)")
    p.add_argument("--hw", action="append", required=True, metavar="NAME",
                   help="hardware: a shipped name (simhw hw list) or a spec YAML path; repeat to compare")
    p.add_argument("-o", "--output", required=True, metavar="FILE.pdf", help="the PDF to write")
    add_set_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import SimhwError
    from ..report.pdf import page_count
    from .common import write_bytes_atomic

    out = Path(args.output)
    if out.suffix.lower() != ".pdf":
        raise SimhwError(f"{out}: the report is a PDF; name the output file *.pdf.")
    if not out.parent.exists():
        raise SimhwError(f"{out}: the folder {out.parent} does not exist.")
    data = build_report(args.workload, args.hw, args.overrides)
    write_bytes_atomic(out, data)
    sys.stdout.write(f"wrote {out} ({page_count(data)} pages, {len(data) / 1024:.0f} KiB)\n")
    return 0


def build_report(workload_path: str, hw_names, overrides=()) -> bytes:
    """Load, cost (with per-op results) on every machine, render; returns the PDF's bytes."""
    from ..report.pdf import report_pdf_bytes
    from ..spec.load import load_hw
    from .estimate import _is_trace, estimate_many

    results = estimate_many(workload_path, hw_names, overrides, ops=True)
    hws = [load_hw(name) for name in hw_names]
    wl = None
    if not _is_trace(workload_path):
        from ..workload.from_yaml import load_workload

        wl = load_workload(workload_path, overrides)
    return report_pdf_bytes(results, hws, wl, workload_label=str(workload_path))
