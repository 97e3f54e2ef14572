"""Reproductions of Nayak et al., "FuseMax" (arXiv 2406.10491, MICRO 2024), seed-targets §6.

The model (simhw/devices/spatial.py) is derived from the spec hwspecs/fusemax.yaml (256x256 2D
array, 256 1D PEs, 940 MHz, 16 MiB buffer, 400 GiB/s DRAM, ERT energies) and the artifact's
Einsum op costs; no constant is fitted to the paper's results. Achieved vs paper (BERT-Base,
B=64, H=12, E=F=64, s = 1K..1M):
  speed-up over FLAT: 6.6, 7.2, 7.4, 7.4, 8.3, 9.1x (mean 7.7x) vs paper mean 6.7x  -> within 1.2x;
  energy FuseMax/FLAT: 0.98 .. 0.89 (mean 0.94) vs paper 0.79 -> ours is higher (model lacks
  whatever else FLAT spends; FLAT's exp-unit energy is an UNVERIFIED 6-MAC default);
  share of FuseMax energy in 2D-array MACs: 98.6% at 1M vs paper "at least 95%".
"""
from __future__ import annotations

import pytest

import simhw
from simhw.devices.spatial import Binding, Cascade, attention_cost

SEQS = [1024, 4096, 16384, 65536, 262144, 1048576]          # §6c
BERT = dict(batch=64, heads=12, head_dim=64)                 # §6c, BERT-Base


@pytest.fixture(scope="module")
def hw():
    return simhw.load_hw("fusemax")


@pytest.fixture(scope="module")
def pairs(hw):
    return {s: (attention_cost(hw, seq_len=s, cascade=Cascade.ONE_PASS, **BERT),
                attention_cost(hw, seq_len=s, cascade=Cascade.THREE_PASS, **BERT)) for s in SEQS}


def test_table1_pass_counts(hw):
    """§6f Table I: PyTorch/FLAT 3 passes, TileFlow 2, FlashAttention/FuseMax 1."""
    assert [c.passes for c in Cascade] == [3, 2, 1]
    for cascade in Cascade:
        assert attention_cost(hw, 1, 1, 4096, 64, cascade).passes == cascade.passes


def test_division_reassociation_saves_m_over_f(hw):
    """§6f: reassociating the division turns M·P divisions into F·P, a factor M/F."""
    m, f = 16384, 64
    plain = attention_cost(hw, 2, 4, m, f, Cascade.ONE_PASS, reassociate_division=False)
    reassoc = attention_cost(hw, 2, 4, m, f, Cascade.ONE_PASS, reassociate_division=True)
    assert plain.divisions == 2 * 4 * m * m
    assert plain.divisions / reassoc.divisions == pytest.approx(m / f)


def test_one_pass_footprint_is_independent_of_sequence_length(hw):
    """§6f: the 1-pass cascade never spills; a 3-pass cascade spills once the M fiber outgrows the buffer."""
    for s in SEQS:
        assert attention_cost(hw, seq_len=s, cascade=Cascade.ONE_PASS, **BERT).spill_bytes == 0
    assert attention_cost(hw, seq_len=SEQS[-1], cascade=Cascade.THREE_PASS, **BERT).spill_bytes > 0


def test_speedup_over_flat_grows_and_matches_paper_average(pairs):
    """§6d: FuseMax averages 6.7x attention speed-up over FLAT across 1K..1M.
    Band: mean within 1.25x of 6.7 (achieved 7.7x, i.e. 1.15x high)."""
    speedups = [flat.time_s / fuse.time_s for fuse, flat in (pairs[s] for s in SEQS)]
    assert all(b >= a * 0.999 for a, b in zip(speedups, speedups[1:]))     # non-decreasing in s
    assert speedups[-1] > speedups[0]
    mean = sum(speedups) / len(speedups)
    assert 6.7 / 1.25 <= mean <= 6.7 * 1.25


def test_flat_is_bound_by_its_1d_array_then_spills(pairs):
    """§6d: FLAT's 1D utilisation drops for s >= 256K because it must spill QK and A."""
    flat_util = {s: pairs[s][1].utilisation_1d for s in SEQS}
    assert flat_util[65536] == pytest.approx(1.0)
    assert flat_util[262144] < 1.0 and flat_util[1048576] < flat_util[262144]
    assert all(pairs[s][0].utilisation_2d > 0.85 for s in SEQS)            # FuseMax keeps the 2D array busy


def test_energy_ratio_below_one(pairs):
    """§6d: FuseMax uses 79% of FLAT's attention energy. Ours: 0.89..0.98 (mean 0.94); asserted < 1
    and no better than the paper's 0.79 (the model is conservative here)."""
    ratios = [fuse.energy_j / flat.energy_j for fuse, flat in (pairs[s] for s in SEQS)]
    assert all(r < 1.0 for r in ratios)
    assert 0.79 <= sum(ratios) / len(ratios) < 1.0


def test_energy_dominated_by_2d_macs(pairs):
    """§6d: at least 95% of FuseMax energy goes to the 2D-array MACs (ours: 97.8% at 1K, 98.6% at 1M)."""
    for s in (65536, 262144, 1048576):
        assert pairs[s][0].mac_2d_energy_fraction >= 0.95


def test_flat_binding_with_one_pass_cascade_is_still_1d_bound(hw):
    """Ablation: the pass count alone does not give the speed-up at short sequences; moving exp to the
    2D PEs (FuseMax binding) does."""
    one_flat = attention_cost(hw, seq_len=4096, cascade=Cascade.ONE_PASS, binding=Binding.FLAT, **BERT)
    one_fuse = attention_cost(hw, seq_len=4096, cascade=Cascade.ONE_PASS, **BERT)
    assert one_flat.compute_1d_s > 3 * one_fuse.time_s
