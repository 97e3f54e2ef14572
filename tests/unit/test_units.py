"""The strict unit parser and its memo of pint results."""
import json

import pytest

from simhw import units
from simhw.errors import SpecError
from simhw.units import Dim, parse_quantity


@pytest.mark.parametrize("text,dim,value", [
    ("80 GB", Dim.BYTES, 80e9), ("80 GiB", Dim.BYTES, 80 * 2**30), ("2039 GB/s", Dim.BYTES_PER_S, 2.039e12),
    ("312 TFLOP/s", Dim.FLOP_PER_S, 312e12), ("624 TOP/s", Dim.FLOP_PER_S, 624e12), ("400 W", Dim.WATTS, 400),
    ("6 pJ/bit", Dim.J_PER_BYTE, 48e-12), ("5 pJ/B", Dim.J_PER_BYTE, 5e-12), ("1410 MHz", Dim.HERTZ, 1.41e9),
    ("3.6 USD/h", Dim.USD_PER_HOUR, 0.001), ("3 us", Dim.SECONDS, 3e-6),
])
def test_parse(text, dim, value):
    assert parse_quantity(text, dim, "x") == pytest.approx(value)


@pytest.mark.parametrize("value,dim,needle", [
    ("80", Dim.BYTES, "has no unit"), (80, Dim.BYTES, "has no unit"), ("80 W", Dim.BYTES, "cannot read"),
    ("-5 GB", Dim.BYTES, "must be positive"), ("0 GB", Dim.BYTES, "must be positive"), (True, Dim.BYTES, "expected"),
    ("eighty GB", Dim.BYTES, "cannot read"),
])
def test_errors_name_the_place(value, dim, needle):
    with pytest.raises(SpecError, match=needle) as err:
        parse_quantity(value, dim, "a.yaml: memory.hbm.capacity")
    assert str(err.value).startswith("a.yaml: memory.hbm.capacity")


def test_shipped_cache_agrees_with_pint():
    data = json.loads(units._SHIPPED_CACHE.read_text())
    assert data
    for key, value in data.items():
        dim, text = key.split("|", 1)
        target = "base" if dim == "base" else Dim(dim)
        assert units.pint_convert(text, target) == pytest.approx(value, rel=1e-12), key


def test_shipped_specs_load_without_pint(monkeypatch, tmp_path):
    """Every quantity in the shipped specs is in the shipped cache (a light CLI start-up)."""
    from simhw.spec import load

    def no_pint(*a, **k):
        raise AssertionError(f"pint called for {a}: run 'python -m simhw.units --rebuild'")
    monkeypatch.setattr(units, "pint_convert", no_pint)
    monkeypatch.setattr(units, "_user_cache_path", lambda: tmp_path / "none.json")
    units._memo.cache_clear()
    load._load_path.cache_clear()
    try:
        for path in sorted(set(load._index().values())):
            load._load_path(path.resolve())
    finally:
        units._memo.cache_clear()
        load._load_path.cache_clear()
