"""FP8 GEMMs on Hopper, which no measurement here covers: the h100 spec's model (not fitted on FP8)
against DeepGEMM's published H800 figures (deepseek-ai/DeepGEMM README: "1350+ FP8 TFLOPS" at its
release, "up to 1550 TFLOPS" later). The H800 has the H100 SXM5's tensor cores and HBM3."""
import pytest

from simhw.cost.power import PowerState, power_limited
from simhw.cost.roofline import op_cost
from simhw.spec.load import load_hw
from simhw.spec.model import DType
from simhw.workload.graph import Op, OpKind, Phase, shape


def _tflops(m, n, k, dtype, state=PowerState.BURST):
    hw = load_hw("h100")
    e = dtype.bytes
    op = Op("g", OpKind.GEMM, Phase.FWD, 0, 2.0 * m * n * k, dtype, weight_bytes=k * n * e, input_bytes=m * k * e,
            output_bytes=m * n * e, shape=shape(m=m, n=n, k=k, batch=1))
    return op.flops / power_limited(op_cost(op, hw), hw, state).time_s / 1e12


def test_large_fp8_gemms_reach_deepgemms_published_rate():
    best = max(_tflops(m, n, k, DType.FP8) for m, n, k in [(4096, 7168, 2048), (4096, 24576, 1536),
                                                           (8192, 8192, 8192), (4096, 7168, 16384)])
    assert 1350 <= best <= 1650


def test_fp8_is_about_twice_bf16_where_compute_bound_and_not_where_memory_bound():
    big = _tflops(8192, 8192, 8192, DType.FP8) / _tflops(8192, 8192, 8192, DType.BF16)
    small = _tflops(64, 7168, 2048, DType.FP8) / _tflops(64, 7168, 2048, DType.BF16)
    assert 1.8 < big < 2.1 and small < big
