"""Multi-page PDF report of one workload costed on several machines.

Pages: summary table; time breakdown; memory breakdown against capacity; op-kind share and
rooflines (more pages when there are more than three machines); workload fields and hardware
sources. The PDF is built in memory (matplotlib ``PdfPages`` over figures made without pyplot),
so the caller can write it atomically and nothing half-written is ever left on disk.
"""
from __future__ import annotations

import io
import textwrap
from dataclasses import fields, is_dataclass
from enum import Enum

from .. import __version__
from .plots import (PAGE, device_of, memory_breakdown_figure, ops_figures, summary_figure,
                    time_breakdown_figure)


def workload_rows(wl) -> list[tuple[str, str]]:
    """Flattened ``field: value`` rows of a workload (model shape, batch, parallelism, memory, decode)."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value) -> None:
        if is_dataclass(value) and not isinstance(value, type):
            for f in fields(value):
                if f.name == "source":
                    continue  # the model's citation is long; the workload's path heads the page
                walk(f"{prefix}.{f.name}" if prefix else f.name, getattr(value, f.name))
        elif isinstance(value, Enum):
            rows.append((prefix, str(value.value)))
        elif isinstance(value, float) and value.is_integer():
            rows.append((prefix, str(int(value))))
        elif hasattr(value, "items"):
            if value:
                rows.append((prefix, ", ".join(f"{k}={v}" for k, v in value.items())))
        else:
            rows.append((prefix, str(value)))

    walk("", wl)
    return rows


def _subtitle(results, wl) -> str:
    r = results[0]
    if wl is None:
        return f"{r.workload} · {r.mode} · {r.devices} devices"
    par = wl.parallelism
    bits = [f"model {wl.model.name}", wl.mode.value, f"{wl.devices} devices",
            f"TP {par.tp} · PP {par.pp} · DP {par.dp}" + (f" · CP {par.cp}" if par.cp > 1 else "")
            + (" · SP" if par.sp else ""), f"seq {wl.seq_len}", f"global batch {wl.global_batch}",
            f"micro-batch {wl.micro_batch}", wl.dtype.value
            + (f" (linears {wl.precision.recipe.value})" if wl.precision.dtype is not None else "")]
    if wl.mode.value == "train":
        bits.append(f"recompute {wl.memory.recompute_label()}")
    return " · ".join(bits)


def info_figure(results, hws, wl, workload_label: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    fig.suptitle("Workload and hardware sources", fontsize=14, fontweight="bold", x=0.03, ha="left")
    rows = workload_rows(wl) if wl is not None else [("trace", workload_label)]
    half = (len(rows) + 1) // 2
    fig.text(0.03, 0.90, f"Workload: {workload_label}", fontsize=10, fontweight="bold", va="top")
    size = 7 if half > 30 else 8
    step = min(0.02, 0.80 / max(half, 1))
    for col, chunk in enumerate((rows[:half], rows[half:])):
        x = 0.03 + col * 0.275
        for i, (key, value) in enumerate(chunk):
            y = 0.865 - i * step
            fig.text(x, y, key, fontsize=size, va="top", color="#444444", family=["monospace"])
            fig.text(x + 0.158, y, textwrap.shorten(value, 18, placeholder="…"), fontsize=size, va="top",
                     family=["monospace"])
    y = 0.90
    fig.text(0.60, y, "Hardware", fontsize=10, fontweight="bold", va="top")
    y -= 0.035
    for r, hw in zip(results, hws):
        dev = device_of(hw)
        head = textwrap.wrap(f"{r.hardware}: {getattr(hw, 'description', '')}", 64)
        lines = []
        sources = [getattr(hw, "source", "")]
        if dev is not hw:
            sources.append(f"device {dev.name}: {dev.source}")
        for src in sources:
            lines += textwrap.wrap(" ".join(str(src).split()), 72) or ["(no source given)"]
        lines = head + lines
        for j, line in enumerate(lines[:10]):
            bold = j < len(head)
            fig.text(0.60, y, line, fontsize=8, va="top", fontweight="bold" if bold else "normal",
                     color="#222222" if bold else "#444444")
            y -= 0.024
        y -= 0.015
        if y < 0.08:
            fig.text(0.60, y, "(more hardware: see `simhw hw show NAME`)", fontsize=8, va="top")
            break
    fig.text(0.03, 0.02, f"simhw {__version__}: analytical estimates (roofline + efficiency model). Every spec "
             "value carries its source in hwspecs/*.yaml; `simhw hw show NAME` lists them.", fontsize=8,
             color="#555555")
    return fig


def report_figures(results, hws, wl=None, workload_label: str = ""):
    """Every page of the report as a figure, in order."""
    from ..spec.model import DType

    label = workload_label or results[0].workload
    # the roofline's ceiling: the format the linears (most of the FLOPs) run in
    dtype = (wl.precision.dtype or wl.dtype) if wl is not None else DType.BF16
    note = (f"simhw {__version__}. Step = {'one decode iteration' if results[0].mode == 'decode' else 'one step'}; "
            "memory is per device on the most loaded device; energy and power cover all devices; "
            "cost = step time × devices × the spec's cloud price.")
    figs = [summary_figure(results, f"{results[0].workload} on {', '.join(r.hardware for r in results)}",
                           _subtitle(results, wl), note),
            time_breakdown_figure(results), memory_breakdown_figure(results)]
    if any(r.ops for r in results):
        figs += ops_figures(results, hws, dtype)
    figs.append(info_figure(results, hws, wl, label))
    return figs


def report_pdf_bytes(results, hws, wl=None, workload_label: str = "") -> bytes:
    """The whole report as PDF bytes (nothing touches the disk)."""
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    meta = {"Title": f"simhw report: {results[0].workload}",
            "Author": f"simhw {__version__}",
            "Subject": f"{results[0].workload} ({results[0].mode}) on " + ", ".join(r.hardware for r in results),
            "Keywords": "simhw, hardware cost, roofline, MFU",
            "Creator": f"simhw {__version__} report"}
    with PdfPages(buf, metadata=meta) as pdf:
        for fig in report_figures(results, hws, wl, workload_label):
            pdf.savefig(fig)
    return buf.getvalue()


def page_count(data: bytes) -> int:
    """Pages in a PDF made here (counts page objects; good enough for matplotlib's output)."""
    import re

    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data))
