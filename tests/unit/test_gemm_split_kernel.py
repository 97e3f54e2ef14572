"""Split-K reduced by a kernel of its own and a per-kernel GEMM prologue (cost/roofline.py
gemm_time_s; Hopper specs: cuBLAS's nvjet split-K GEMMs are followed by cublasLt::splitKreduce_kernel,
validate/data/h100-2026-11-26/measurements-gemm-kernels.csv)."""
from __future__ import annotations

import dataclasses

import pytest

import simhw
from simhw.cost.roofline import gemm_time_s
from simhw.spec.model import DType


def with_eff(hw, **kw):
    return dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, **kw))


@pytest.fixture(scope="module")
def h100():
    return simhw.load_hw("h100")


def test_hopper_specs_split_k_with_a_reduction_kernel(h100):
    eff = h100.efficiency
    assert eff.gemm_split_k_kernel and eff.gemm_max_split_k > 1 and eff.gemm_prologue_s > 0
    a100 = simhw.load_hw("a100").efficiency
    assert not a100.gemm_split_k_kernel and a100.gemm_prologue_s == 0


def test_a_split_gemm_pays_one_more_launch_for_its_reduction(h100):
    # m = 64, n = 256, k = 4096: four 64 x 64 tiles on 132 SMs; cuBLAS splits K (measured names)
    split = gemm_time_s(64, 256, 4096, 1, DType.BF16, h100)[0]
    fused = gemm_time_s(64, 256, 4096, 1, DType.BF16, with_eff(h100, gemm_split_k_kernel=False))[0]
    unsplit = gemm_time_s(64, 256, 4096, 1, DType.BF16, with_eff(h100, gemm_max_split_k=1))[0]
    assert split == pytest.approx(fused + h100.efficiency.launch_s)
    assert split < unsplit          # splitting still beats four SMs walking k = 4096 alone


def test_a_gemm_that_does_not_split_pays_no_reduction(h100):
    big = gemm_time_s(4096, 4096, 4096, 1, DType.BF16, h100)[0]
    assert big == pytest.approx(gemm_time_s(4096, 4096, 4096, 1, DType.BF16,
                                            with_eff(h100, gemm_split_k_kernel=False))[0])


def test_the_prologue_is_charged_once_per_kernel(h100):
    for shape in ((1, 4096, 4096), (8192, 8192, 8192), (64, 256, 4096)):
        with_p = gemm_time_s(*shape, 1, DType.BF16, h100)[0]
        without = gemm_time_s(*shape, 1, DType.BF16, with_eff(h100, gemm_prologue_s=0.0))[0]
        assert with_p - without == pytest.approx(h100.efficiency.gemm_prologue_s, rel=1e-9)
