"""Operands a benchmark loop re-reads stay in L2 when they fit (cost/roofline.py l2_hits: the LRU
stack distance, operand + bytes touched between its reads <= L2 x l2_resident_fraction), and then
cost no main-memory reads; aiconfigurator's converter says what its six-layer loop re-reads."""
import dataclasses

import pytest

import simhw
from simhw.cost.roofline import gemm_time_s, l2_hits
from simhw.validation import convert_aiconfigurator
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines

MB = 1e6


def _rows(*reuse):
    text = "kind,m,n,k,dtype,a_reuse_bytes,b_reuse_bytes,measured_s\n" + "".join(
        f"gemm,{m},{n},{k},bf16,{a},{b},1e-5\n" for m, n, k, a, b in reuse)
    return parse_lines(text.splitlines(), "x")


def test_an_operand_that_fits_with_its_reuse_distance_is_an_l2_hit():
    hw = simhw.load_hw("a100")
    cap = hw.memory_level("l2").capacity_bytes * hw.efficiency.l2_resident_fraction
    assert 0.7 * 40 * MB < cap < 0.9 * 40 * MB
    (near, far, never), bad = _rows((2048, 32, 6144, 0.5 * MB, 1 * MB),     # x = 25.2 MB
                                    (2048, 32, 10240, 0.5 * MB, 1 * MB),    # x = 41.9 MB
                                    (2048, 32, 6144, "", ""))
    assert not bad
    assert l2_hits(near.op.shape, 2, hw) == (True, True)
    assert l2_hits(far.op.shape, 2, hw) == (False, True)
    assert l2_hits(never.op.shape, 2, hw) == (False, False)     # a harness that rotates its inputs
    # the reuse distance counts: the same operand behind 10 MB of other traffic no longer fits
    (crowded,), _ = _rows((2048, 32, 6144, 10 * MB, 1 * MB))
    assert l2_hits(crowded.op.shape, 2, hw)[0] is False
    # memory-bound, so reading x from L2 is faster; residency off (fraction 0) gives the cold time
    assert predict_s(near, hw) < 0.9 * predict_s(never, hw)
    off = dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, l2_resident_fraction=0.0))
    assert l2_hits(near.op.shape, 2, off) == (False, False)
    assert predict_s(near, off) == pytest.approx(predict_s(never, hw), rel=1e-12)


def test_hits_never_make_a_gemm_slower_and_keep_the_compute_floor():
    hw = simhw.load_hw("a100")
    from simhw.spec.model import DType
    for m, n, k in ((1, 4096, 4096), (2048, 32, 4096), (4096, 4096, 4096)):
        cold = gemm_time_s(m, n, k, 1, DType.BF16, hw)[0]
        warm = gemm_time_s(m, n, k, 1, DType.BF16, hw, True, True)[0]
        assert warm <= cold + 1e-15
        assert warm >= 2 * m * n * k / hw.peak(DType.BF16)


def test_bad_reuse_cells_are_reported_with_their_line():
    _, bad = _rows((64, 64, 64, -1, 0))
    assert bad and bad[0].line == 2 and "a_reuse_bytes" in bad[0].reason and "non-negative" in bad[0].reason


def test_aiconfigurator_rows_carry_their_loops_reuse_distances(tmp_path):
    aic = tmp_path / "a100"
    aic.mkdir()
    (aic / "gemm_bf16.csv").write_text("m,n,k,latency\n2048,32,4096,0.012\n")
    row = convert_aiconfigurator(tmp_path).iloc[0]
    x, w, out = 2 * 2048 * 4096, 2 * 4096 * 32, 2 * 2048 * 32
    assert row.a_reuse_bytes == w + out                   # one other layer between two reads of x
    assert row.b_reuse_bytes == x + 5 * w + 6 * out       # a whole loop between two reads of a weight
