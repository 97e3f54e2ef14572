"""Error statistics of predictions against measurements, per kind and overall.

Errors are fractions: the signed error of a row is ``predicted / measured - 1``; its absolute
percentage error (APE) is the absolute value. Per group: n, median and 90th-percentile APE, and
the bias (median signed error: > 0 means simhw predicts too slow).
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..cost.power import PowerState
from .schema import BadRow, Measurement

SCHEMA = "simhw.validate/1"


@dataclass(frozen=True)
class RowResult:
    line: int
    kind: str
    source: str
    label: str
    measured_s: float
    predicted_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0

    @property
    def ape(self) -> float:
        return abs(self.error)


@dataclass(frozen=True)
class GroupStats:
    n: int
    median_ape: float
    p90_ape: float
    bias: float

    def to_dict(self) -> dict:
        return {"n": self.n, "median_ape": self.median_ape, "p90_ape": self.p90_ape, "bias": self.bias}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), ``q`` in [0, 100]."""
    xs = sorted(values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def group_stats(rows: Sequence[RowResult]) -> GroupStats:
    apes = [r.ape for r in rows]
    return GroupStats(len(rows), percentile(apes, 50), percentile(apes, 90),
                      percentile([r.error for r in rows], 50))


@dataclass(frozen=True)
class ValidationResult:
    hardware: str
    path: str
    rows: tuple[RowResult, ...]
    bad: tuple[BadRow, ...] = ()
    unpriced: tuple[BadRow, ...] = ()
    kinds: dict = field(default_factory=dict)
    overall: GroupStats | None = None
    sources: dict = field(default_factory=dict)
    power: str = ""                  # the power state of rows without a power cell (cost/power.py)

    def worst(self, kind: str | None = None, count: int = 5) -> list[RowResult]:
        rows = [r for r in self.rows if kind is None or r.kind == kind]
        return sorted(rows, key=lambda r: r.ape, reverse=True)[:count]

    def to_dict(self) -> dict:
        out = {"schema": SCHEMA, "hardware": self.hardware, "file": self.path, "power_default": self.power,
               "kinds": {k: v.to_dict() for k, v in self.kinds.items()},
               "overall": self.overall.to_dict() if self.overall else None}
        if len(self.sources) > 1:
            out["sources"] = {s: {k: v.to_dict() for k, v in ks.items()} for s, ks in self.sources.items()}
        bands: dict = {}
        for (kind, band), st in duration_bands(self.rows).items():
            bands.setdefault(kind, {})[band] = st.to_dict()
        out["by_measured_time"] = bands
        out["worst"] = [{"line": r.line, "kind": r.kind, "label": r.label, "measured_s": r.measured_s,
                         "predicted_s": r.predicted_s, "error": r.error} for r in self.worst(count=10)]
        out["unreadable"] = [{"line": b.line, "reason": b.reason} for b in self.bad]
        out["unpriced"] = [{"line": b.line, "reason": b.reason} for b in self.unpriced]
        return out


def summarise(hardware: str, path: str, rows: Sequence[RowResult], bad: Sequence[BadRow] = (),
              unpriced: Sequence[BadRow] = (), power: str = "") -> ValidationResult:
    kinds: dict[str, list[RowResult]] = {}
    by_source: dict[str, dict[str, list[RowResult]]] = {}
    for r in rows:
        kinds.setdefault(r.kind, []).append(r)
        by_source.setdefault(r.source or "-", {}).setdefault(r.kind, []).append(r)
    return ValidationResult(
        hardware=hardware, path=path, rows=tuple(rows), bad=tuple(bad), unpriced=tuple(unpriced),
        kinds={k: group_stats(v) for k, v in sorted(kinds.items())},
        overall=group_stats(rows) if rows else None,
        sources={s: {k: group_stats(v) for k, v in sorted(ks.items())} for s, ks in sorted(by_source.items())},
        power=power)


def evaluate(measurements: Sequence[Measurement], hw, path: str = "", bad: Sequence[BadRow] = (),
             power: PowerState = PowerState.BURST) -> ValidationResult:
    """Predict every measurement on ``hw`` and summarise; rows the spec cannot price are listed.
    ``power``: the power state of rows that do not give one (cost/power.py)."""
    from .predict import predict_s

    rows: list[RowResult] = []
    unpriced: list[BadRow] = []
    for m in measurements:
        try:
            p = predict_s(m, hw, power)
        except (ValueError, KeyError) as exc:
            unpriced.append(BadRow(m.line, str(exc).strip("'")))
            continue
        rows.append(RowResult(m.line, m.kind, m.source, m.label, m.measured_s, p))
    return summarise(getattr(hw, "name", "?"), path, rows, bad, unpriced, power.value)


def trace_result(path, hw, power: PowerState = PowerState.BURST) -> ValidationResult:
    """Predicted vs measured kernel time per op of a CUDA trace (its own kernel times are the
    measurements), as a ValidationResult; ops priced in ``power`` (a profiler capture is usually
    taken seconds into a run: burst)."""
    from ..workload.from_torch_trace import validate_trace

    df = validate_trace(path, hw, power=power)
    rows = [RowResult(line=i + 1, kind=str(r.kind), source="trace", label=f"{r.name} ({r.phase})",
                      measured_s=float(r.measured_s), predicted_s=float(r.predicted_s))
            for i, r in enumerate(df.itertuples()) if r.measured_s > 0]
    return summarise(hw.name, str(path), rows, power=power.value)


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _spct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:+.1f}%"


DURATION_BANDS_S = (5e-6, 50e-6, 500e-6)    # kernel-time bands of the table: where the error lives


def duration_bands(rows) -> dict[tuple[str, str], GroupStats]:
    """Statistics per (kind, measured-time band) for kinds whose rows span more than one band."""
    edges = ("",) + tuple(_time(t) for t in DURATION_BANDS_S)
    names = [f"< {edges[1]}"] + [f"{a}-{b}" for a, b in zip(edges[1:], edges[2:])] + [f">= {edges[-1]}"]
    groups: dict[tuple[str, int], list[RowResult]] = {}
    for r in rows:
        groups.setdefault((r.kind, bisect.bisect_right(DURATION_BANDS_S, r.measured_s)), []).append(r)
    bands_of = Counter(kind for kind, _ in groups)
    return {(k, names[i]): group_stats(rs) for (k, i), rs in sorted(groups.items()) if bands_of[k] > 1}


def render_table(result: ValidationResult, worst: int = 5) -> str:
    """Human-readable summary: per kind (and per source when several), overall, worst rows."""
    state = f" (power: {result.power} unless a row says otherwise)" if result.power else ""
    lines = [f"simhw validate: {result.path} on {result.hardware}{state}", ""]
    header = f"{'kind':<14}{'n':>7}{'median':>10}{'p90':>10}{'bias':>10}"
    groups = [(k, v) for k, v in result.kinds.items()]
    lines.append(header)
    for k, v in groups:
        lines.append(f"{k:<14}{v.n:>7}{_pct(v.median_ape):>10}{_pct(v.p90_ape):>10}{_spct(v.bias):>10}")
    if result.overall:
        o = result.overall
        lines.append(f"{'overall':<14}{o.n:>7}{_pct(o.median_ape):>10}{_pct(o.p90_ape):>10}{_spct(o.bias):>10}")
    if len(result.sources) > 1:
        w = max(16, 2 + max(len(src) for src in result.sources))
        lines += ["", f"{'source':<{w}}{'kind':<14}{'n':>7}{'median':>10}{'p90':>10}{'bias':>10}"]
        for s, ks in result.sources.items():
            for k, v in ks.items():
                lines.append(f"{s:<{w}}{k:<14}{v.n:>7}{_pct(v.median_ape):>10}{_pct(v.p90_ape):>10}{_spct(v.bias):>10}")
    bands = duration_bands(result.rows)
    if bands:
        lines += ["", f"{'kind':<14}{'measured':<14}{'n':>7}{'median':>10}{'p90':>10}{'bias':>10}"]
        for (kind, band), v in bands.items():
            lines.append(f"{kind:<14}{band:<14}{v.n:>7}{_pct(v.median_ape):>10}{_pct(v.p90_ape):>10}{_spct(v.bias):>10}")
    if worst and result.rows:
        lines += ["", "worst rows (line, kind, label: measured -> predicted, error):"]
        for kind in result.kinds:
            for r in result.worst(kind, worst):
                lines.append(f"  {r.line:>6} {r.kind:<11} {r.label or '-'}: {_time(r.measured_s)} -> "
                             f"{_time(r.predicted_s)} ({_spct(r.error)})")
    lines.append("")
    lines.append("errors: median / p90 of |predicted/measured - 1|; bias = median signed error (+ = simhw slower)")
    if result.bad:
        lines += ["", f"{len(result.bad)} unreadable row(s), not counted:"]
        lines += [f"  line {b.line}: {b.reason}" for b in result.bad[:20]]
        if len(result.bad) > 20:
            lines.append(f"  ... and {len(result.bad) - 20} more (use --format json for all)")
    if result.unpriced:
        lines += ["", f"{len(result.unpriced)} row(s) this spec cannot price, not counted:"]
        reasons: dict[str, list[int]] = {}
        for b in result.unpriced:
            reasons.setdefault(b.reason, []).append(b.line)
        for reason, ls in reasons.items():
            shown = ", ".join(str(x) for x in ls[:8]) + (" ..." if len(ls) > 8 else "")
            lines.append(f"  lines {shown}: {reason}")
    return "\n".join(lines) + "\n"


def _time(t: float) -> str:
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"
