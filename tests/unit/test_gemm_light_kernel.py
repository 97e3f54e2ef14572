"""The library's small one-stage GEMM kernel (cost/ctas.py light_gemm; A100 spec: cuBLAS sm80's
CUTLASS WMMA kernels with 32 x 32 tiles and one 32-deep k-tile stage). With one stage every k-tile
costs gemm_light_k_step; cuBLAS runs it for m <= gemm_light_max_m and otherwise only from
gemm_light_min_macs multiply-adds on."""
from __future__ import annotations

import math

import pytest

import simhw
from simhw.calibrate import with_efficiency as with_eff
from simhw.cost.ctas import light_gemm
from simhw.cost.roofline import gemm_time_s
from simhw.spec.model import DType


@pytest.fixture(scope="module")
def a100():
    return simhw.load_hw("a100")


def gemm_s(hw, m, n, k):
    return gemm_time_s(m, n, k, 1, DType.BF16, hw)[0]


def test_the_a100_spec_has_the_kernel_and_hopper_does_not(a100):
    eff = a100.efficiency
    assert eff.gemm_light_tile == 32 and eff.gemm_light_tile_k == 32 and eff.gemm_light_k_step_s > 0
    assert eff.gemm_light_max_m == 16 and eff.gemm_light_min_macs == 2 ** 21
    assert simhw.load_hw("h100").efficiency.gemm_light_tile == 0


def test_a_small_m_gemm_is_its_k_tiles_after_the_first(a100):
    # m = 8, n = 512, k = 128: 16 CTAs (one wave), four k-tiles; the launch holds the first step
    step = a100.efficiency.gemm_light_k_step_s
    t = gemm_s(a100, 8, 512, 128)
    assert t == pytest.approx(3 * step, rel=1e-9)
    assert t < gemm_s(with_eff(a100, gemm_light_tile=0), 8, 512, 128) - 0.5e-6


def test_each_k_tile_adds_one_step_while_the_chain_sets_the_time(a100):
    step = a100.efficiency.gemm_light_k_step_s
    times = [gemm_s(a100, 4, 256, k) for k in (64, 128, 256)]
    assert times[1] - times[0] == pytest.approx(2 * step, rel=1e-9)
    assert times[2] - times[1] == pytest.approx(4 * step, rel=1e-9)


def test_below_the_mac_threshold_m_over_16_keeps_the_tiled_kernels(a100):
    # m = 32, n = 1536, k = 32: 1.57 M MACs < 2^21; cuBLAS runs a kernel about 1.2 us slower
    assert 32 * 1536 * 32 < 2 ** 21
    assert light_gemm(32, 1536, 32, 1, a100.efficiency, 108, 1e12, 1e12, 1e12, 0.0, 2) is None
    assert gemm_s(a100, 32, 1536, 32) == gemm_s(with_eff(a100, gemm_light_tile=0), 32, 1536, 32)
    # from 2^21 MACs on (m = 32, n = 2048, k = 32) it runs, about 1.2 us faster, as measured
    plain = gemm_s(with_eff(a100, gemm_light_tile=0), 32, 2048, 32)
    assert gemm_s(a100, 32, 2048, 32) < plain - 1e-6


def test_large_gemms_keep_the_tiled_pipelined_kernels(a100):
    for shape in ((4096, 4096, 4096), (1, 16384, 16384), (16, 8192, 8192)):
        assert gemm_s(a100, *shape) == gemm_s(with_eff(a100, gemm_light_tile=0), *shape)


def test_bytes_bound_the_kernel_from_below(a100):
    eff = a100.efficiency
    m, n, k = 16, 4096, 2048
    bw = a100.main_memory.bandwidth_bytes_per_s
    read = (m * k + k * n) * 2 * eff.l2_reuse
    mem = read / (bw * eff.memory_fraction) + m * n * 2 / (bw * eff.write_fraction)
    ctas = math.ceil(m / 32) * math.ceil(n / 32)
    t, _, got_mem = light_gemm(m, n, k, 1, eff, a100.compute_units, 1e15, bw * eff.memory_fraction,
                               bw * eff.write_fraction, read, 2)
    assert got_mem == pytest.approx(mem)
    chain = math.ceil(ctas / a100.compute_units) * (k // 32) * eff.gemm_light_k_step_s - eff.gemm_light_k_step_s
    assert t == pytest.approx(max(chain, mem))


def test_calibrate_fits_the_k_step_where_the_spec_has_the_kernel(a100):
    from simhw.calibrate import calibrate, parameters_for, with_efficiency
    from simhw.validation.predict import predict_s
    from simhw.validation.schema import parse_lines

    head = "kind,measured_s,m,n,k,dtype,label\n"
    shapes = [(m, n, k) for m in (1, 4, 16) for n in (64, 512, 2048) for k in (64, 128, 256, 512)]
    rows, bad = parse_lines((head + "".join(f"gemm,1,{m},{n},{k},bf16,g{i}\n"
                                            for i, (m, n, k) in enumerate(shapes))).splitlines(True))
    assert not bad
    assert "gemm_light_k_step_s" in parameters_for(rows, a100)
    assert "gemm_light_k_step_s" not in parameters_for(rows, simhw.load_hw("h100"))
    truth = with_efficiency(a100, gemm_light_k_step_s=0.3e-6)
    measured, _ = parse_lines((head + "".join(f"gemm,{predict_s(r, truth)},{m},{n},{k},bf16,g{i}\n"
                                              for i, (r, (m, n, k)) in enumerate(zip(rows, shapes))))
                              .splitlines(True))
    result = calibrate(measured, a100, params=["gemm_light_k_step_s"])
    assert result.params["gemm_light_k_step_s"][1] == pytest.approx(0.3e-6, rel=0.05)
    assert result.after["gemm"].median_ape < 0.01 < result.before["gemm"].median_ape


def test_only_16_bit_gemms_run_the_wmma_kernel(a100):
    plain = with_eff(a100, gemm_light_tile=0)
    for dtype in (DType.FP32,):
        assert gemm_time_s(8, 512, 128, 1, dtype, a100) == gemm_time_s(8, 512, 128, 1, dtype, plain)
    assert gemm_time_s(8, 512, 128, 1, DType.FP16, a100)[0] < gemm_time_s(8, 512, 128, 1, DType.FP16, plain)[0]


def test_a_derived_spec_turns_the_kernel_off_with_a_zero_step(a100, tmp_path):
    path = tmp_path / "a100-no-wmma.yaml"
    path.write_text("name: a100-no-wmma\nversion: 1\nkind: gpu\nextends: a100\n"
                    "efficiency:\n  gemm_light_k_step: 0 us\n")
    off = simhw.load_hw(str(path))
    assert off.efficiency.gemm_light_k_step_s == 0 and off.efficiency.gemm_light_tile == 32
    assert gemm_s(off, 8, 512, 128) == gemm_s(with_eff(a100, gemm_light_tile=0), 8, 512, 128)


def test_the_report_prices_the_gemms_with_and_without_the_kernel(a100):
    import sys
    from pathlib import Path

    from simhw.validation.predict import predict_s
    from simhw.validation.schema import parse_lines

    sys.path.insert(0, str(Path(__file__).parents[2] / "validate"))
    from ablation import without_light_kernel   # validate/ablation.py

    head = "kind,measured_s,m,n,k,dtype,label\n"
    shapes = ((8, 512, 128), (4, 256, 64), (4096, 4096, 4096))
    rows, _ = parse_lines((head + "".join(f"gemm,1,{m},{n},{k},bf16,g\n" for m, n, k in shapes)).splitlines(True))
    # measured = the spec's own prices: 0% as priced; the small ones slower without the kernel
    rows, bad = parse_lines((head + "".join(f"gemm,{predict_s(r, a100)},{m},{n},{k},bf16,g\n"
                                            for r, (m, n, k) in zip(rows, shapes))).splitlines(True))
    assert not bad
    lines = without_light_kernel(rows, a100, "hand", 5e-6)
    assert lines[3].startswith("- GEMMs as priced: median 0.0%, p90 0.0%")
    assert "the 2 under 5 us" in lines[3] and "without the one-stage kernel" in lines[4]
    assert "median 0.0%" not in lines[4].split("under")[1]
    assert without_light_kernel(rows, simhw.load_hw("h100"), "hand", 5e-6) == []
