"""timing=compiled: a row timed on the host around one call of a torch.compile'd function adds the
spec's host_compiled_call_gap (LLMCompass's GELU and LayerNorm rows are such)."""
from __future__ import annotations

import pytest

import simhw
from simhw.calibrate import parameters_for
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines

CSV = """kind,elements,reads,writes,dtype,timing,measured_s
elementwise,4096,1,1,fp16,kernel,5e-6
elementwise,4096,1,1,fp16,wall,2e-5
elementwise,4096,1,1,fp16,compiled,5e-5
"""


def test_each_timing_adds_its_host_time():
    hw = simhw.load_hw("a100")
    rows, bad = parse_lines(CSV.splitlines(), "t.csv")
    assert not bad and [r.timing for r in rows] == ["kernel", "wall", "compiled"]
    kernel, wall, compiled = (predict_s(r, hw) for r in rows)
    eff = hw.efficiency
    assert eff.host_compiled_call_gap_s == pytest.approx(44e-6)
    assert wall - kernel == pytest.approx(eff.host_launch_gap_s)
    assert compiled - kernel == pytest.approx(eff.host_compiled_call_gap_s)
    assert "host_compiled_call_gap_s" in parameters_for(rows)
    assert "host_compiled_call_gap_s" not in parameters_for(rows[:2])


def test_an_unknown_timing_is_named_with_the_allowed_ones():
    rows, bad = parse_lines(CSV.replace("compiled", "graph").splitlines(), "t.csv")
    assert len(rows) == 2 and len(bad) == 1
    assert "'timing' = 'graph' must be kernel, wall or compiled" in bad[0].reason
