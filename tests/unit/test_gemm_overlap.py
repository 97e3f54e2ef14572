"""The p-norm that joins a GEMM CTA's on-chip (tensor, L2) and HBM times (cost/ctas.py: overlap;
Efficiency.gemm_overlap): it charges for the stalls when both are close and leaves alone GEMMs that
one of them dominates."""
from __future__ import annotations

import dataclasses

import pytest

import simhw
from simhw.cost.ctas import overlap
from simhw.cost.roofline import gemm_time_s
from simhw.spec.model import DType


def test_overlap_is_the_max_for_large_p_and_a_p_norm_otherwise():
    assert overlap((3.0, 1.0, 2.0), 100.0) == 3.0
    assert overlap((2.0, 2.0), 5.0) == pytest.approx(2.0 * 2.0 ** 0.2)
    assert overlap((1.0, 1e-3), 5.0) == pytest.approx(1.0, rel=1e-9)
    assert overlap((0.0, 0.0), 5.0) == 0.0
    assert max(1.0, 0.7) <= overlap((1.0, 0.7), 5.0) <= 1.0 + 0.7


def _with_overlap(hw, p):
    return dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, gemm_overlap=p))


@pytest.mark.parametrize("name", ["a100", "h100", "b200"])
def test_large_gemms_keep_their_speed_and_balanced_ones_pay(name):
    hw = simhw.load_hw(name)
    blended, perfect = hw, _with_overlap(hw, 100.0)
    big = (8192, 8192, 8192)                       # compute-bound: HBM time is a small part
    assert gemm_time_s(*big, 1, DType.BF16, blended)[0] == pytest.approx(
        gemm_time_s(*big, 1, DType.BF16, perfect)[0], rel=0.002)
    mid = (128, 4096, 4096)                         # tensor and HBM times of the same order
    t_blend = gemm_time_s(*mid, 1, DType.BF16, blended)[0]
    t_max = gemm_time_s(*mid, 1, DType.BF16, perfect)[0]
    assert t_max < t_blend < 2.0 ** (1 / hw.efficiency.gemm_overlap) * t_max * 1.0001
