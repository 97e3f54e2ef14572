"""The footprint data tables (``simhw/footprint/data/*.yaml``), read once and checked.

Every table states its source in its header; the numbers are never edited in Python.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

from ..errors import SimhwError

DATA_DIR = Path(__file__).resolve().parent / "data"


class FootprintError(SimhwError):
    """Bad footprint input (MFU list, lifespan, grid, PUE, budget) or a broken data table."""


@functools.lru_cache(maxsize=None)
def table(name: str) -> Mapping[str, Any]:
    """The parsed ``data/<name>.yaml`` (a mapping with ``schema: simhw.footprint.<name>/1``)."""
    import yaml

    path = DATA_DIR / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:  # a broken install, not a user error
        raise FootprintError(f"{path}: cannot read the footprint data table ({type(exc).__name__}); "
                             "reinstall simhw.") from None
    expected = f"simhw.footprint.{'composition' if name == 'gpu_composition' else name}/1"
    if not isinstance(data, Mapping) or data.get("schema") != expected:
        raise FootprintError(f"{path}: expected schema {expected!r}; reinstall simhw.")
    return data
