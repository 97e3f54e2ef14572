"""Human formatting of SI floats (only report code formats numbers)."""
from __future__ import annotations

_PREFIX = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def si(value: float, unit: str, digits: int = 3) -> str:
    """``si(2.039e12, "B/s") -> "2.04 TB/s"`` (decimal prefixes)."""
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIX:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return seconds(value) if unit == "s" else f"{value:.{digits}g} {unit}"


def seconds(value: float) -> str:
    if value >= 1 or value == 0:
        return f"{value:.4g} s"
    for scale, name in ((1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
        if value >= scale:
            return f"{value / scale:.4g} {name}"
    return f"{value:.3g} s"


def gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def table(rows: list[list[str]], header: list[str], width: int = 100) -> str:
    """A plain left/right-aligned text table that fits ``width`` columns when it can."""
    cols = [header] + rows
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cols):
        cells = [str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip()[:width])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths)[:width])
    return "\n".join(lines)
