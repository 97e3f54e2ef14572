"""The three Hopper constants validate/fit_hopper.py derives from simhw's own H100 / H200 runs
(hwspecs/h100.yaml, h200.yaml): each still does what its source says on the committed data."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import simhw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "validate"))

import fit_hopper  # noqa: E402


def test_gemm_l2_ratio_improves_the_fit_gpu_and_the_held_out_one():
    for spec in ("h100", "h200"):
        ratio = simhw.load_hw(spec).efficiency.gemm_l2_ratio
        base = fit_hopper.gemm_errors(spec, "measurements.csv", 1.0)
        now = fit_hopper.gemm_errors(spec, "measurements.csv", ratio)
        assert ratio > 1.0 and now[0] < base[0] and now[1] < base[1], (spec, base, now)


def test_fp16_runs_slower_under_the_power_limit_and_its_energy_says_so():
    for spec in ("h100", "h200"):
        ratios = fit_hopper.fp16_time_ratios(spec)
        assert ratios["<1e10"] < 1.015 and ratios[">1e12"] > 1.03, ratios
        as_bf16, now = fit_hopper.fp16_bias(spec)
        assert as_bf16 < now < 0 and now > -0.05, (as_bf16, now)


def test_attention_backward_fraction_is_the_median_of_the_profiled_steps():
    fractions = list(fit_hopper.backward_fractions().values())
    assert len(fractions) == 6 and 0.6 < min(fractions) and max(fractions) < 0.85
    assert abs(np.median(fractions) - simhw.load_hw("h100").efficiency.attention_backward_fraction) <= 0.02


def test_inductor_sums_are_the_ones_its_docstring_quotes():
    """simhw/trace/inductor.py: the Inductor kernels sum to 0.86 and 0.96 of their measured time and
    scatter by about 15% (median) one by one."""
    sums = fit_hopper.inductor_sums()
    assert sums["12x768"][1] == pytest.approx(0.86, abs=0.01) and sums["32x2560"][1] == pytest.approx(0.96, abs=0.01)
    assert all(0.12 <= median <= 0.2 for _, _, median in sums.values())
