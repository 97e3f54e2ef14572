"""Figures of estimate results: summary table, time and memory breakdowns, op-kind share, roofline.

Every builder returns a :class:`matplotlib.figure.Figure` made without pyplot (no global state, no
GUI backend; the PDF and PNG writers render it). matplotlib is imported inside the functions so the
CLI starts without it. Inputs are :class:`~simhw.cost.estimate.EstimateResult` values (with
``ops`` where a figure needs them) and the hardware specs they were costed on.

Roofline: Williams, Waterman and Patterson 2009, "Roofline: an insightful visual performance
model" (CACM 52(4)), Fig. 1: attainable FLOP/s = min(peak, intensity x memory bandwidth).
"""
from __future__ import annotations

import math
from collections import defaultdict

from .fmt import gib, pct, seconds, si

PAGE = (11.69, 8.27)  # A4 landscape, inches

TIME_PARTS = ("compute", "memory", "communication", "latency", "pipeline_bubble", "data_parallel",
              "optimizer", "engine_overhead")
MEMORY_PARTS = (("parameters", "parameters_bytes"), ("gradients", "gradients_bytes"),
                ("optimizer state", "optimizer_bytes"), ("activations", "activations_bytes"),
                ("KV cache", "kv_cache_bytes"), ("logits + loss", "logits_bytes"))
_PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#EE8866",
            "#44BB99", "#332288")


def kind_colors(kinds) -> dict[str, str]:
    """A stable colour per op kind (sorted names), shared by the share chart and the roofline."""
    return {k: _PALETTE[i % len(_PALETTE)] for i, k in enumerate(sorted(kinds))}


def _figure(title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    fig.suptitle(title, fontsize=14, fontweight="bold", x=0.03, ha="left")
    return fig


def _time_scale(max_s: float) -> tuple[float, str]:
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if max_s >= scale:
            return scale, name
    return 1e-9, "ns"


def usd(value: float) -> str:
    """Dollars with four significant digits and no exponent: ``$0.00009096``, ``$2.842``, ``$1,234``."""
    if value <= 0:
        return "$0"
    decimals = max(0, 3 - math.floor(math.log10(value)))
    return f"${value:,.{decimals}f}"


def device_of(hw):
    return getattr(hw, "device", hw)


def summary_rows(results) -> list[list[str]]:
    """Metric rows (label + one cell per hardware) of the summary page."""
    first = results[0]
    step = {"train": "step time (1 optimizer step)", "prefill": "prefill time (whole batch)",
            "decode": "decode iteration time"}.get(first.mode, "step time")
    rows = [[step] + [seconds(r.step_time_s) for r in results]]
    if first.mode == "decode":
        rows.append(["generation time (all new tokens)"] + [seconds(r.total_time_s) for r in results])
    if len(results) > 1:
        rows.append([f"speed-up vs {first.hardware}"] + [f"{first.step_time_s / r.step_time_s:.2f}x" for r in results])
    rows += [
        ["throughput"] + [si(r.tokens_per_s, "tok/s") for r in results],
        ["model FLOPs / step"] + [si(r.model_flops, "FLOP") for r in results],
        ["MFU"] + [pct(r.mfu) for r in results],
        ["HFU"] + [pct(r.hfu) for r in results],
        ["memory per device (peak)"] + [gib(r.memory.peak_bytes) for r in results],
        ["device memory capacity"] + [gib(r.memory.capacity_bytes) for r in results],
        ["fits in device memory"] + ["yes" if r.memory.fits else "NO" for r in results],
        ["energy / step"] + [si(r.energy_j, "J") for r in results],
        ["average power (all devices)"] + [si(r.avg_power_w, "W") for r in results],
        ["cloud cost / step"] + [usd(r.cost_usd) for r in results],
    ]
    tokens = [r.tokens_per_s * r.step_time_s for r in results]
    if all(t > 0 for t in tokens):
        rows.append(["cloud cost / million tokens"] + [usd(r.cost_usd / t * 1e6) for r, t in zip(results, tokens)])
    return rows


def summary_figure(results, title: str, subtitle: str, note: str = ""):
    fig = _figure(title)
    fig.text(0.03, 0.905, subtitle, fontsize=10, va="top", color="#333333")
    ax = fig.add_axes([0.03, 0.10, 0.94, 0.72])
    ax.axis("off")
    rows = summary_rows(results)
    header = ["metric"] + [r.hardware for r in results]
    first_w = 0.30
    other_w = (0.98 - first_w) / max(len(results), 1)
    table = ax.table(cellText=rows, colLabels=header, loc="upper left", cellLoc="right",
                     colWidths=[first_w] + [other_w] * len(results))
    table.auto_set_font_size(False)
    table.set_fontsize(10 if len(results) <= 4 else 8)
    table.scale(1, 1.55)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("#CCCCCC")
        if row == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#E8EEF6")
        if col == 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.02
        elif row > 0 and cell.get_text().get_text() == "NO":
            cell.set_text_props(color="#B00020", fontweight="bold")
    if note:
        fig.text(0.03, 0.03, note, fontsize=8, color="#555555")
    return fig


def time_breakdown_figure(results):
    fig = _figure("Where the step time goes")
    ax = fig.add_axes([0.08, 0.12, 0.66, 0.74])
    parts = [p for p in TIME_PARTS if any(r.time_breakdown_s.get(p, 0) > 0 for r in results)]
    scale, unit = _time_scale(max(r.step_time_s for r in results))
    names = [r.hardware for r in results]
    bottom = [0.0] * len(results)
    for i, part in enumerate(parts):
        vals = [r.time_breakdown_s.get(part, 0.0) / scale for r in results]
        ax.bar(names, vals, bottom=bottom, width=0.6, color=_PALETTE[i % len(_PALETTE)],
               label=part.replace("_", " "), edgecolor="white", linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for x, r in enumerate(results):
        ax.text(x, r.step_time_s / scale, seconds(r.step_time_s), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(f"time per step ({unit})")
    ax.set_ylim(0, max(bottom) * 1.12 if max(bottom) > 0 else 1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, title="bound / part")
    fig.text(0.08, 0.04, "Compute, memory, communication and latency are the critical stage's op time by its "
             "bound; bubble, exposed data-parallel reduction, optimizer and engine overhead are added on top.",
             fontsize=8, color="#555555", wrap=True)
    return fig


def memory_breakdown_figure(results):
    fig = _figure("Memory per device (peak) against capacity")
    ax = fig.add_axes([0.08, 0.12, 0.66, 0.74])
    names = [r.hardware for r in results]
    parts = [(label, key) for label, key in MEMORY_PARTS if any(getattr(r.memory, key) > 0 for r in results)]
    bottom = [0.0] * len(results)
    for i, (label, key) in enumerate(parts):
        vals = [getattr(r.memory, key) / 2**30 for r in results]
        ax.bar(names, vals, bottom=bottom, width=0.6, color=_PALETTE[i % len(_PALETTE)], label=label,
               edgecolor="white", linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, vals)]
    caps = [r.memory.capacity_bytes / 2**30 for r in results]
    for x, (r, cap) in enumerate(zip(results, caps)):
        if cap > 0:
            ax.hlines(cap, x - 0.42, x + 0.42, colors="#B00020", linestyles="--", linewidth=1.8,
                      label="capacity" if x == 0 else None)
        status = "fits" if r.memory.fits else "does NOT fit"
        of = f" of {gib(r.memory.capacity_bytes)}" if cap > 0 else ""
        ax.text(x, max(bottom[x], cap) * 1.02, f"{gib(r.memory.peak_bytes)}{of}\n{status}", ha="center",
                va="bottom", fontsize=9, color="#222222" if r.memory.fits else "#B00020")
    ax.set_ylabel("GiB per device")
    ax.set_ylim(0, max(max(bottom), max(caps)) * 1.2 or 1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return fig


def op_kind_share(result) -> dict[str, float]:
    """Fraction of the summed op time spent in each op kind (from ``estimate(..., ops=True)``)."""
    by_kind: dict[str, float] = defaultdict(float)
    for op in result.ops:
        by_kind[op.kind] += op.time_s
    total = sum(by_kind.values())
    return {k: v / total for k, v in by_kind.items()} if total > 0 else {}


def _share_axes(ax, results, colors):
    shares = [op_kind_share(r) for r in results]
    kinds = sorted({k for s in shares for k in s}, key=lambda k: -sum(s.get(k, 0) for s in shares))
    left = [0.0] * len(results)
    y = list(range(len(results)))
    for kind in kinds:
        vals = [100 * s.get(kind, 0.0) for s in shares]
        ax.barh(y, vals, left=left, height=0.6, color=colors[kind], label=kind, edgecolor="white", linewidth=0.5)
        for yi, (l0, v) in enumerate(zip(left, vals)):
            if v >= 6:
                ax.text(l0 + v / 2, yi, f"{v:.0f}%", ha="center", va="center", fontsize=8, color="white")
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(y, [r.hardware for r in results])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of op time (%)")
    ax.set_title("Op time by kind", fontsize=11, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)


def roofline_points(result) -> list[tuple[str, float, float, float]]:
    """(kind, FLOP/byte, achieved FLOP/s, time share) per distinct op with FLOPs; repeated layers merge."""
    merged: dict[tuple, list[float]] = {}
    total = sum(op.time_s for op in result.ops) or 1.0
    for op in result.ops:
        if op.flops <= 0 or op.bytes <= 0 or op.time_s <= 0:
            continue
        achieved = op.flops / op.time_s
        key = (op.kind, round(math.log10(op.intensity), 2), round(math.log10(achieved), 2))
        entry = merged.setdefault(key, [op.intensity, achieved, 0.0])
        entry[2] += op.time_s / total
    return [(k[0], v[0], v[1], v[2]) for k, v in merged.items()]


def roofline_axes(ax, result, hw, dtype, colors):
    """Ops on ``hw``: intensity vs achieved FLOP/s under min(peak, intensity x main-memory bandwidth)."""
    dev = device_of(hw)
    peak = dev.peak(dtype)
    bw = dev.main_memory.bandwidth_bytes_per_s
    pts = roofline_points(result)
    ridge = peak / bw
    xs = [p[1] for p in pts] + [ridge]
    lo = 10 ** math.floor(math.log10(max(min(xs), 1e-3)) - 0.5)
    hi = 10 ** math.ceil(math.log10(max(xs)) + 0.5)
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.loglog(grid, [min(peak, x * bw) for x in grid], color="#222222", linewidth=1.6)
    ax.axvline(ridge, color="#999999", linestyle=":", linewidth=1)
    ax.text(0.03, 0.97, f"peak {dtype.value}: {si(peak, 'FLOP/s')}\n{dev.main_memory.name}: {si(bw, 'B/s')}\n"
            f"ridge: {ridge:.3g} FLOP/B", transform=ax.transAxes, ha="left", va="top", fontsize=8,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#CCCCCC"})
    for kind in sorted({p[0] for p in pts}):
        sel = [p for p in pts if p[0] == kind]
        ax.scatter([p[1] for p in sel], [p[2] for p in sel], s=[12 + 400 * p[3] for p in sel],
                   color=colors[kind], alpha=0.75, edgecolors="white", linewidths=0.4, label=kind)
    ymin = min([p[2] for p in pts] + [lo * bw]) / 3
    ax.set_ylim(ymin, peak * 12)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(f"Roofline: {result.hardware}", fontsize=11, loc="left")
    ax.grid(True, which="major", color="#EEEEEE", linewidth=0.6)


def ops_figures(results, hws, dtype):
    """Op-kind share plus rooflines (up to four in a row); more hardware continues on further pages."""
    colors = kind_colors({op.kind for r in results for op in r.ops})
    figs = []
    pairs = list(zip(results, hws))
    first, rest = pairs[:4], pairs[4:]
    fig = _figure("Ops: time by kind and roofline")
    share_ax = fig.add_axes([0.16, 0.63, 0.68, 0.25 if len(results) > 2 else 0.18])
    _share_axes(share_ax, results, colors)
    _roofline_row(fig, first, dtype, colors, bottom=0.13, height=0.39)
    fig.text(0.07, 0.012, "Roofline: one point per distinct op (repeated layers merged), marker area ∝ share of "
             "op time; ops without FLOPs (collectives, embedding lookups) are left out.\nRoof = min(peak, "
             "intensity × main-memory bandwidth) of one device (Williams et al. 2009).", fontsize=8,
             color="#555555")
    figs.append(fig)
    while rest:
        chunk, rest = rest[:8], rest[8:]
        fig = _figure("Rooflines (continued)")
        _roofline_row(fig, chunk[:4], dtype, colors, bottom=0.53, height=0.35)
        _roofline_row(fig, chunk[4:], dtype, colors, bottom=0.08, height=0.35)
        figs.append(fig)
    return figs


def _roofline_row(fig, pairs, dtype, colors, bottom, height):
    columns = max(3, len(pairs))
    gap = 0.06 if columns <= 3 else 0.055
    width = (0.90 - gap * (columns - 1)) / columns
    for i, (r, hw) in enumerate(pairs):
        ax = fig.add_axes([0.07 + i * (width + gap), bottom, width, height])
        if not r.ops:
            ax.axis("off")
            ax.text(0.5, 0.5, "no per-op results", ha="center", transform=ax.transAxes)
            continue
        roofline_axes(ax, r, hw, dtype, colors)
