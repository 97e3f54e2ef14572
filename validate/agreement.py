"""How far two public measurement sets agree with each other on the shapes they both measured.

    agreement(rows_by_source, predicted_by_source) -> list[Agreement]
    agreement_table(items) -> markdown

Two sets that timed the same kernel shape on the same GPU model (aiconfigurator's and vidur's A100
GEMMs share 360 shapes) set a floor under any model's error: when one set says 100 us and the other
130 us, no prediction is within 5% of both. For every pair of sources and op kind this module
compares the per-shape median times (kernel-timed rows only; wall-clock rows add host time),
and reports

- the sets' disagreement: median and p90 of |t_a / t_b - 1| over the shared shapes;
- the floor: the error, against both sets' rows, of the best single number per shape (the
  geometric mean of the two times, which splits the disagreement evenly);
- simhw's error on the same shapes, against both sets' rows.

Shapes are keyed by kind, op name, and shape values; 16-bit float types count as one (bf16 and fp16
run the same tensor-core rate on every GPU here), and flags that describe the harness rather than
the shape (a paged-cache write, a latency-bound load width, a collective's fabric scope, the bytes
a harness loop touches between re-reads of a GEMM operand) are
ignored, so a kernel timed on two harnesses still matches; collectives also match on ranks per node.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from itertools import combinations

# a_reuse / b_reuse: how much a harness loop touches between re-reads of an operand (L2 residency)
_HARNESS_KEYS = frozenset({"kv_write", "load_bytes", "scope", "a_reuse", "b_reuse"})
_SIXTEEN_BIT = frozenset({"bf16", "fp16"})


@dataclass(frozen=True)
class Agreement:
    """The comparison of two sources on one op kind; errors are fractions."""

    source_a: str
    source_b: str
    kind: str
    shapes: int
    disagreement_median: float
    disagreement_p90: float
    floor_median: float
    floor_p90: float
    simhw_median: float
    simhw_p90: float


def _med_p90(values: list[float]) -> tuple[float, float]:
    from simhw.validation.stats import percentile

    return percentile(values, 50), percentile(values, 90)


def _shape_key(m) -> tuple:
    dtype = str(getattr(m.op.dtype, "value", m.op.dtype))
    items = tuple(sorted((k, float(v)) for k, v in m.op.shape.items() if k not in _HARNESS_KEYS))
    per_node = (m.ranks_per_node or m.op.shape["ranks"]) if m.kind == "collective" else 0
    return (m.kind, m.op.name, "16-bit" if dtype in _SIXTEEN_BIT else dtype, items, per_node)


def _per_shape(rows, predicted: dict[int, float]) -> dict[tuple, tuple[float, float]]:
    """Shape key -> (median measured s, median predicted s) over a source's kernel-timed rows."""
    groups: dict[tuple, list] = {}
    for m in rows:
        if m.timing == "kernel" and m.line in predicted:
            groups.setdefault(_shape_key(m), []).append((m.measured_s, predicted[m.line]))
    return {k: (statistics.median(t for t, _ in v), statistics.median(p for _, p in v)) for k, v in groups.items()}


def agreement(rows_by_source: dict[str, list], predicted_by_source: dict[str, dict[int, float]],
              min_shapes: int = 10) -> list[Agreement]:
    """Every pair of sources and op kind with at least ``min_shapes`` shared shapes."""
    shapes = {s: _per_shape(rows, predicted_by_source.get(s, {})) for s, rows in rows_by_source.items()}
    out = []
    for a, b in combinations(shapes, 2):
        common = shapes[a].keys() & shapes[b].keys()
        for kind in sorted({k[0] for k in common}):
            keys = [k for k in common if k[0] == kind]
            if len(keys) < min_shapes:
                continue
            disagree, floor, model = [], [], []
            for k in keys:
                (ta, pa), (tb, pb) = shapes[a][k], shapes[b][k]
                disagree.append(abs(tb / ta - 1))
                mid = math.sqrt(ta * tb)
                floor += [abs(mid / ta - 1), abs(mid / tb - 1)]
                model += [abs(pa / ta - 1), abs(pb / tb - 1)]
            out.append(Agreement(a, b, kind, len(keys), *_med_p90(disagree), *_med_p90(floor), *_med_p90(model)))
    return out


def agreement_table(items: list[Agreement]) -> str:
    """Markdown table of :func:`agreement`'s results (empty string when there are none)."""
    if not items:
        return ""
    pct = lambda x: f"{100 * x:.1f}%"   # noqa: E731
    lines = ["| sets | op kind | shared shapes | sets disagree (median / p90) | "
             "best single number per shape | simhw on those shapes |", "| --- | --- | ---: | --- | --- | --- |"]
    for g in items:
        lines.append(f"| {g.source_a} vs {g.source_b} | {g.kind} | {g.shapes} | "
                     f"{pct(g.disagreement_median)} / {pct(g.disagreement_p90)} | "
                     f"{pct(g.floor_median)} / {pct(g.floor_p90)} | {pct(g.simhw_median)} / {pct(g.simhw_p90)} |")
    return "\n".join(lines)
