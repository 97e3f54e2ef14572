"""Compare simhw's predictions with real measurements.

The measurement CSV (schema.py) has one row per kernel: ``kind`` (gemm, attention, collective,
elementwise, norm, softmax), the shape columns and ``measured_s``. :func:`validate` reads a file,
costs each row with the cost model (roofline.op_cost, comm.collective_time_s) and returns
per-kind error statistics (stats.py). sources.py converts public measurement sets into that CSV;
e2e.py compares whole serving steps (Splitwise) with :func:`simhw.estimate`.
"""
from __future__ import annotations

from pathlib import Path

from ..cost.power import PowerState
from .schema import COLUMNS, KINDS, BadRow, Measurement, build_op, frame_to_measurements, read_measurements
from .sources import SOURCES, convert, convert_aiconfigurator, convert_llmcompass, convert_vidur
from .stats import (SCHEMA, GroupStats, RowResult, ValidationResult, evaluate, group_stats, render_table,
                    trace_result)

__all__ = ["COLUMNS", "KINDS", "SCHEMA", "SOURCES", "BadRow", "GroupStats", "Measurement", "RowResult", "trace_result",
           "ValidationResult", "build_op", "convert", "convert_aiconfigurator", "convert_llmcompass",
           "convert_vidur", "evaluate", "frame_to_measurements", "group_stats", "read_measurements",
           "render_table", "validate", "validate_frame"]


def validate(path: str | Path, hw, power: PowerState = PowerState.BURST) -> ValidationResult:
    """Read the measurement CSV at ``path`` and compare it with predictions on ``hw``
    (a spec, or a name/path for :func:`simhw.load_hw`); rows without a ``power`` cell run in
    ``power`` (cost/power.py)."""
    if isinstance(hw, str):
        from ..spec.load import load_hw

        hw = load_hw(hw)
    rows, bad = read_measurements(path)
    return evaluate(rows, hw, str(path), bad, power)


def validate_frame(df, hw, name: str = "<frame>") -> ValidationResult:
    """As :func:`validate`, for a DataFrame in the CSV schema (e.g. from a converter)."""
    if isinstance(hw, str):
        from ..spec.load import load_hw

        hw = load_hw(hw)
    rows, bad = frame_to_measurements(df)
    return evaluate(rows, hw, name, bad)
