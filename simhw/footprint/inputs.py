"""Parse the footprint options (``--mfu``, ``--lifespan``, ``--grid``, ``--pue``, budgets) strictly.

Every bad value is a :class:`FootprintError` (a :class:`~simhw.errors.SimhwError`): one line that
says what was wrong and what is allowed; the CLI exits with code 2.
"""
from __future__ import annotations

import math
import re

from ._tables import FootprintError

DAY_S = 86400.0
YEAR_S = 365.25 * DAY_S          # Julian year, as pint's "year" (the specs' "5 year")
_SUFFIX_S = {"y": YEAR_S, "yr": YEAR_S, "yrs": YEAR_S, "year": YEAR_S, "years": YEAR_S,
             "mo": YEAR_S / 12, "month": YEAR_S / 12, "months": YEAR_S / 12,
             "w": 7 * DAY_S, "wk": 7 * DAY_S, "week": 7 * DAY_S, "weeks": 7 * DAY_S,
             "d": DAY_S, "day": DAY_S, "days": DAY_S, "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
             "hours": 3600.0}
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _items(text: str, option: str, example: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(not t for t in items):
        raise FootprintError(f"{option} {text!r}: expected a comma-separated list such as {example}.")
    return items


def parse_mfus(text: str) -> tuple[float, ...]:
    """``"0.2,0.6"`` or ``"20%,60%"`` -> (0.2, 0.6); each in (0, 1], duplicates dropped."""
    out: list[float] = []
    for item in _items(text, "--mfu", "0.2,0.6"):
        pct = item.endswith("%")
        body = item[:-1].strip() if pct else item
        if not re.fullmatch(_NUM, body):
            raise FootprintError(f"--mfu {text!r}: {item!r} is not a number; write fractions such as 0.2,0.6.")
        value = float(body) / (100.0 if pct else 1.0)
        if not (0 < value <= 1) or not math.isfinite(value):
            raise FootprintError(f"--mfu {text!r}: {item!r} is outside (0, 1]; MFU is a fraction of peak, "
                                 "e.g. 0.2 for 20%.")
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_lifespan_s(item: str, option: str = "--lifespan") -> float:
    """``"1y"``, ``"3 yr"``, ``"18mo"``, ``"365d"``, ``"5 year"`` -> seconds; a bare number is an error."""
    item = str(item).strip()
    m = re.fullmatch(rf"({_NUM})\s*([A-Za-z]*)", item)
    if m and not m.group(2):
        raise FootprintError(f"{option} {item!r} has no unit; write e.g. 1y, 3y, 18mo or 365d.")
    if m and m.group(2).lower() in _SUFFIX_S:
        value = float(m.group(1)) * _SUFFIX_S[m.group(2).lower()]
    else:
        from ..errors import SpecError
        from ..units import Dim, parse_quantity

        try:
            value = parse_quantity(item, Dim.SECONDS, option)
        except SpecError:
            raise FootprintError(f"{option} {item!r} is not a duration; write e.g. 1y, 3y, 18mo or 365d.") from None
    if not (value > 0 and math.isfinite(value)):
        raise FootprintError(f"{option} {item!r} must be a positive duration.")
    return value


def parse_lifespans(text: str) -> tuple[float, ...]:
    """``"1y,3y"`` -> (31557600.0, 94672800.0) seconds (Julian years), duplicates dropped."""
    out: list[float] = []
    for item in _items(text, "--lifespan", "1y,3y"):
        value = parse_lifespan_s(item)
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_grid(text: str | float) -> tuple[str, float]:
    """``"usa"`` -> ("usa", 380.0); ``"450"`` or ``"450 g/kWh"`` -> ("450 g/kWh", 450.0) (g CO2e/kWh)."""
    from .carbon import grid_g_per_kwh

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, name = float(text), f"{text:g} g/kWh"
    else:
        s = str(text).strip()
        m = re.fullmatch(rf"({_NUM})\s*(g\s*/\s*kWh|gCO2e?/kWh)?", s, flags=re.IGNORECASE)
        if m:
            value, name = float(m.group(1)), f"{float(m.group(1)):g} g/kWh"
        elif re.fullmatch(r"[A-Za-z_ -]+", s):
            return s.lower(), grid_g_per_kwh(s)
        else:
            from ..errors import SpecError
            from ..units import Dim, parse_quantity

            try:
                value = parse_quantity(s, Dim.KG_PER_KWH, "--grid", allow_zero=True) * 3.6e6 * 1e3
            except SpecError:
                raise FootprintError(f"--grid {s!r}: expected a location ({', '.join(_grids())}) or an "
                                     "intensity in g/kWh such as 450.") from None
            name = f"{value:g} g/kWh"
    if not (value >= 0 and math.isfinite(value)):
        raise FootprintError(f"--grid {text!r}: the intensity must be a non-negative number of g/kWh.")
    return name, value


def _grids() -> tuple[str, ...]:
    from .carbon import grid_names

    return grid_names()


def parse_pue(value) -> float:
    """Power usage effectiveness: a number >= 1 (1.1 = 10% facility overhead)."""
    try:
        pue = float(value)
    except (TypeError, ValueError):
        raise FootprintError(f"--pue {value!r} is not a number; write e.g. 1.1.") from None
    if not (math.isfinite(pue) and pue >= 1):
        raise FootprintError(f"--pue {value!r} must be at least 1 (facility energy / IT energy).")
    return pue


def parse_positive(value, option: str, example: str) -> float:
    """A positive finite number such as ``2.1e25`` (FLOPs) or ``13e12`` (tokens)."""
    text = str(value).strip().replace("_", "")
    if not re.fullmatch(_NUM, text):
        raise FootprintError(f"{option} {value!r} is not a number; write e.g. {example}.")
    out = float(text)
    if not (out > 0 and math.isfinite(out)):
        raise FootprintError(f"{option} {value!r} must be a positive number.")
    return out
