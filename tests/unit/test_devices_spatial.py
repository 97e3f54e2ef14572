"""Unit tests of simhw.devices.spatial (FuseMax-style attention cost; seed-targets §6)."""
from __future__ import annotations

import dataclasses

import pytest

import simhw
from simhw.devices.spatial import Binding, Cascade, attention_cost, einsums, spatial_params


@pytest.fixture(scope="module")
def hw():
    return simhw.load_hw("fusemax")


def test_params_come_from_the_spec(hw):
    p = spatial_params(hw)
    assert (p.rows_2d, p.cols_2d, p.pes_1d) == (256, 256, 256)
    assert p.word_bytes == 2 and p.exp_macs == 6
    assert p.clock_hz == pytest.approx(940e6)
    assert p.dram_bytes_per_s == pytest.approx(400 * 2**30)
    assert p.glb_read_j_per_byte == pytest.approx(484.97e-12 / 512)


def test_mac_counts(hw):
    b, h, s, d = 2, 3, 1024, 64
    flat = attention_cost(hw, b, h, s, d, Cascade.THREE_PASS)
    fuse = attention_cost(hw, b, h, s, d, Cascade.ONE_PASS)
    scores = b * h * s * s
    assert flat.macs == pytest.approx(scores * (d + d))            # QK + AV, exp on FLAT's exp unit
    assert fuse.macs_2d == pytest.approx(scores * (d + 6 + d))     # + exp as 6 MACs on the 2D PEs


def test_one_pass_has_no_spill_and_multi_pass_spills_at_long_sequences(hw):
    one = attention_cost(hw, 1, 1, 2**20, 64, Cascade.ONE_PASS)
    two = attention_cost(hw, 1, 1, 2**20, 64, Cascade.TWO_PASS)
    three = attention_cost(hw, 1, 1, 2**20, 64, Cascade.THREE_PASS, binding=Binding.FUSEMAX)
    assert one.spill_bytes == 0
    assert two.spill_bytes > 0
    assert three.spill_bytes == pytest.approx(2 * two.spill_bytes)   # traffic grows with the passes after the first
    assert one.time_s < two.time_s < three.time_s


def test_short_sequences_fit_on_chip(hw):
    for cascade in Cascade:
        assert attention_cost(hw, 1, 1, 1024, 64, cascade).spill_bytes == 0


def test_latency_is_the_max_of_its_bounds(hw):
    c = attention_cost(hw, 4, 12, 4096, 64, Cascade.ONE_PASS)
    assert c.time_s == pytest.approx(max(c.compute_2d_s, c.compute_1d_s, c.dram_s))
    assert 0 < c.utilisation_2d <= 1 and 0 < c.utilisation_1d <= 1


def test_more_dram_bandwidth_never_slows(hw):
    mem = hw.memory
    fast = dataclasses.replace(hw, memory=(dataclasses.replace(mem[0], bandwidth_bytes_per_s=10 * mem[0].bandwidth_bytes_per_s),) + mem[1:])
    for cascade in Cascade:
        assert attention_cost(fast, 8, 12, 2**18, 64, cascade).time_s <= attention_cost(hw, 8, 12, 2**18, 64, cascade).time_s


def test_energy_parts_add_up(hw):
    c = attention_cost(hw, 1, 2, 8192, 64, Cascade.THREE_PASS)
    parts = c.mac_2d_energy_j + c.other_compute_energy_j + c.rf_energy_j + c.glb_energy_j + c.dram_energy_j
    assert c.energy_j == pytest.approx(parts)


def test_einsum_lists():
    names = [e.name for e in einsums(Cascade.ONE_PASS, Binding.FUSEMAX, 64)]
    assert {"QK", "LM", "RM", "PRM", "SPD", "SPNV", "RD", "RNV", "AV"} <= set(names)
    flat = einsums(Cascade.THREE_PASS, Binding.FLAT, 64)
    assert all(not e.on_2d for e in flat if e.name in {"M", "SN", "SD", "AV"})


def test_rejects_bad_shapes(hw):
    with pytest.raises(ValueError):
        attention_cost(hw, 0, 1, 1024, 64, Cascade.ONE_PASS)
