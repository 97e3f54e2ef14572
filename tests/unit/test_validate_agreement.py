"""validate/agreement.py: how far two measurement sets agree on the shapes they share, computed on
hand-made rows whose figures are known."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from simhw.validation.schema import parse_lines

sys.path.insert(0, str(Path(__file__).parents[2] / "validate"))
import agreement  # noqa: E402  (validate/agreement.py)

HEAD = "kind,m,n,k,dtype,op,bytes,ranks,ranks_per_node,timing,measured_s\n"
SET_A = HEAD + """gemm,1024,1024,1024,bf16,,,,,,0.0001
gemm,2048,1024,1024,bf16,,,,,,0.0002
gemm,4096,1024,1024,bf16,,,,,,0.0004
gemm,4096,1024,1024,bf16,,,,,,0.0006
gemm,64,64,64,bf16,,,,,,0.00001
collective,,,,fp16,all_reduce,1e6,2,2,,0.00005
"""
# the same GEMM shapes in fp16 (one 16-bit class), 10%, 30% and 0% slower than A's medians; a shape
# only B has; a wall-clock row (host time included: never compared); the same all_reduce across nodes
SET_B = HEAD + """gemm,1024,1024,1024,fp16,,,,,,0.00011
gemm,2048,1024,1024,fp16,,,,,,0.00026
gemm,4096,1024,1024,fp16,,,,,,0.0005
gemm,128,64,64,fp16,,,,,,0.00001
gemm,64,64,64,fp16,,,,,wall,0.00004
collective,,,,fp16,all_reduce,1e6,2,1,,0.0002
"""


def _rows(text: str, name: str):
    rows, bad = parse_lines(text.splitlines(), name)
    assert not bad
    return rows


def test_shared_shapes_disagreement_floor_and_model_error():
    rows = {"a": _rows(SET_A, "a.csv"), "b": _rows(SET_B, "b.csv")}
    # a model that predicts 0.0001 s for every row of both sets
    predicted = {s: {m.line: 0.0001 for m in rs} for s, rs in rows.items()}
    items = agreement.agreement(rows, predicted, min_shapes=1)
    assert [(g.kind, g.shapes) for g in items] == [("gemm", 3)]      # the collectives differ in ranks per node
    g = items[0]
    assert g.disagreement_median == pytest.approx(0.1)               # 10%, 30%, 0% (0.0005 vs the median 0.0005)
    floor = sorted(abs(math.sqrt(ta * tb) / t - 1) for ta, tb in [(1e-4, 1.1e-4), (2e-4, 2.6e-4), (5e-4, 5e-4)]
                   for t in (ta, tb))
    assert g.floor_median == pytest.approx((floor[2] + floor[3]) / 2)
    model = sorted(abs(1e-4 / t - 1) for t in (1e-4, 1.1e-4, 2e-4, 2.6e-4, 5e-4, 5e-4))
    assert g.simhw_median == pytest.approx((model[2] + model[3]) / 2)
    assert g.floor_median < g.disagreement_median
    table = agreement.agreement_table(items)
    assert "| a vs b | gemm | 3 | 10.0% / " in table


def test_too_few_shared_shapes_give_no_row():
    rows = {"a": _rows(SET_A, "a.csv"), "b": _rows(SET_B, "b.csv")}
    predicted = {s: {m.line: 1e-4 for m in rs} for s, rs in rows.items()}
    assert agreement.agreement(rows, predicted) == []                 # min_shapes 10 by default
    assert agreement.agreement_table([]) == ""


def test_harness_loop_reuse_does_not_split_a_gemm_shape():
    """aiconfigurator's rows carry the bytes its loop touches between re-reads of an operand
    (a_reuse_bytes, b_reuse_bytes: L2 residency); vidur's do not. The GEMM is the same shape."""
    head = "kind,m,n,k,dtype,a_reuse_bytes,b_reuse_bytes,timing,measured_s\n"
    a = head + "".join(f"gemm,{m},1024,1024,bf16,3e7,9e7,,1e-4\n" for m in (64, 128, 256))
    b = head + "".join(f"gemm,{m},1024,1024,fp16,,,,1.2e-4\n" for m in (64, 128, 256))
    rows = {"a": _rows(a, "a.csv"), "b": _rows(b, "b.csv")}
    predicted = {s: {m.line: 1e-4 for m in rs} for s, rs in rows.items()}
    items = agreement.agreement(rows, predicted, min_shapes=1)
    assert [(g.kind, g.shapes) for g in items] == [("gemm", 3)]
    assert items[0].disagreement_median == pytest.approx(0.2)
