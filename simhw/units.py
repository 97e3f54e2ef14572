"""Units: one strict parser at the YAML boundary, SI floats everywhere inside.

Quantities in YAML are strings with units (``"80 GB"``, ``"2.039 TB/s"``, ``"312 TFLOP/s"``,
``"400 W"``, ``"5 pJ/B"``). :func:`parse_quantity` parses them with pint once and returns a plain
float in SI base units of the expected dimension: bytes, seconds, FLOP, joules, watts, dollars,
kilograms. GB = 1e9 B, GiB = 2**30 B. A missing or wrong unit is a :class:`~simhw.errors.SimhwError`
naming the YAML path.

pint is imported lazily (the CLI's start-up stays light) and parsed strings are memoised.
"""
from __future__ import annotations

import functools
import math
import re
from enum import Enum

from .errors import SpecError


class Dim(Enum):
    """Dimensions a spec or workload field may have, with their SI target unit (as pint text)."""

    BYTES = "byte"
    BYTES_PER_S = "byte / second"
    FLOP = "flop"
    FLOP_PER_S = "flop / second"
    SECONDS = "second"
    HERTZ = "hertz"
    WATTS = "watt"
    JOULES = "joule"
    J_PER_FLOP = "joule / flop"
    J_PER_BYTE = "joule / byte"
    USD = "usd"
    USD_PER_HOUR = "usd / hour"
    KG = "kilogram"
    KG_PER_AREA = "kilogram / meter ** 2"
    AREA = "meter ** 2"
    LENGTH = "meter"
    KG_PER_KWH = "kilogram / kilowatt_hour"
    KG_PER_BYTE = "kilogram / byte"
    DIMENSIONLESS = "dimensionless"


# Scale factors from the pint target unit to the SI float simhw stores (usd/hour -> usd/s etc.).
_TO_INTERNAL = {Dim.USD_PER_HOUR: 1.0 / 3600.0, Dim.KG_PER_KWH: 1.0 / 3.6e6}

_DEFS = """
flop = [flop] = FLOP = FLOPs
op = flop = OP = OPS
usd = [currency] = USD = dollar
"""


@functools.lru_cache(maxsize=1)
def _registry():
    import pint

    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True, on_redefinition="ignore")
    for line in _DEFS.strip().splitlines():
        ureg.define(line)
    return ureg


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@functools.lru_cache(maxsize=4096)
def _parse(text: str, dim: Dim) -> float:
    ureg = _registry()
    q = ureg.Quantity(text)
    return float(q.to(dim.value).magnitude)


def parse_quantity(value, dim: Dim, where: str, *, positive: bool = True, allow_zero: bool = False) -> float:
    """Parse ``value`` (a string with a unit) into an SI float of dimension ``dim``.

    ``where`` names the place for error messages (``"hwspecs/a100.yaml: memory.hbm.capacity"``).
    A dimensionless field also accepts a bare number.
    """
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a quantity with a unit ({_example(dim)}), got {value!r}.")
    if dim is Dim.DIMENSIONLESS and isinstance(value, (int, float)):
        out = float(value)
    else:
        if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.match(value)):
            if not (isinstance(value, (int, float)) and value == 0 and allow_zero):
                raise SpecError(
                    f"{where}: {value!r} has no unit; write it with a unit such as {_example(dim)}."
                )
            return 0.0
        if not isinstance(value, str):
            raise SpecError(f"{where}: expected a quantity string such as {_example(dim)}, got {value!r}.")
        try:
            out = _parse(value.strip(), dim) * _TO_INTERNAL.get(dim, 1.0)
        except Exception as exc:  # pint raises several unrelated classes
            raise SpecError(
                f"{where}: cannot read {value!r} as {dim.name.lower().replace('_', ' ')} "
                f"(e.g. {_example(dim)}): {type(exc).__name__}."
            ) from None
    if not math.isfinite(out):
        raise SpecError(f"{where}: {value!r} is not a finite number.")
    if out < 0 or (out == 0 and positive and not allow_zero):
        raise SpecError(f"{where}: {value!r} must be {'non-negative' if allow_zero else 'positive'}.")
    return out


_EXAMPLES = {
    Dim.BYTES: '"80 GB"', Dim.BYTES_PER_S: '"2039 GB/s"', Dim.FLOP: '"1e21 FLOP"',
    Dim.FLOP_PER_S: '"312 TFLOP/s"', Dim.SECONDS: '"5 us"', Dim.HERTZ: '"1410 MHz"',
    Dim.WATTS: '"400 W"', Dim.JOULES: '"2.4 nJ"', Dim.J_PER_FLOP: '"0.5 pJ/FLOP"',
    Dim.J_PER_BYTE: '"6 pJ/B"', Dim.USD: '"15000 USD"', Dim.USD_PER_HOUR: '"2.5 USD/h"',
    Dim.KG: '"1.2 kg"', Dim.AREA: '"826 mm**2"', Dim.LENGTH: '"7 nm"',
    Dim.KG_PER_AREA: '"23.2 kg/m**2"', Dim.KG_PER_KWH: '"0.38 kg/kWh"', Dim.KG_PER_BYTE: '"0.4 kg/GB"',
    Dim.DIMENSIONLESS: "0.9",
}


def _example(dim: Dim) -> str:
    return _EXAMPLES.get(dim, dim.value)
