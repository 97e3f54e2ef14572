"""MEMO §4.2 placement MIP against brute force over every order of ≤ 6 tensors, and bi-level."""
import itertools
import random

import pytest

pytest.importorskip("highspy")
pytest.importorskip("pyomo")

from simhw.errors import InfeasibleError  # noqa: E402
from simhw.schedule import placement as pl  # noqa: E402
from simhw.schedule.placement import BilevelData, LayerBlock, PlacementData, TensorLifetime  # noqa: E402
from simhw.schedule.solve import SolveStatus  # noqa: E402


def brute_force_peak(tensors):
    """Exact: every acyclic 'below' relation is consistent with some order; given an order the
    lowest offsets are longest paths, so the best order gives the optimal peak."""
    n, best = len(tensors), float("inf")
    for order in itertools.permutations(range(n)):
        offset = {}
        for i in order:
            offset[i] = max([offset[j] + tensors[j].size_bytes for j in offset
                             if pl.overlaps(tensors[i], tensors[j])] + [0.0])
        best = min(best, max(offset[i] + tensors[i].size_bytes for i in range(n)))
    return best


def random_tensors(seed, n):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = rng.randint(0, 6)
        out.append(TensorLifetime(f"t{i}", rng.choice([1, 2, 3, 4, 6, 8]) * 2.0 ** 20, start,
                                  start + rng.randint(1, 5)))
    return tuple(out)


def test_max_live_and_overlap():
    t = (TensorLifetime("a", 4.0, 0, 2), TensorLifetime("b", 3.0, 2, 4), TensorLifetime("c", 1.0, 1, 3))
    assert not pl.overlaps(t[0], t[1])  # [0,2) and [2,4) do not overlap
    assert pl.overlapping_pairs(t) == [(0, 2), (1, 2)]
    assert pl.max_live_bytes(t) == 5.0


# first-fit largest-first leaves a hole here (peak 7 B); the optimum reaches max live (6 B)
GREEDY_FRAGMENTS = (TensorLifetime("a", 2.0, 1, 4), TensorLifetime("b", 2.0, 2, 5),
                    TensorLifetime("c", 3.0, 1, 2), TensorLifetime("d", 4.0, 4, 7))


@pytest.mark.parametrize("seed", range(15))
def test_mip_matches_brute_force(seed):
    tensors = random_tensors(seed, 3 + seed % 4)
    r = pl.solve(PlacementData(tensors))
    assert r.status is SolveStatus.OPTIMAL
    assert pl.is_valid_placement(tensors, r.offsets_bytes)
    assert r.peak_bytes == pytest.approx(brute_force_peak(tensors), rel=1e-9)
    assert r.fragmentation_bytes == pytest.approx(r.peak_bytes - pl.max_live_bytes(tensors))
    assert r.fragmentation_bytes >= -1e-6


def test_mip_removes_greedy_fragmentation():
    t = GREEDY_FRAGMENTS
    assert pl.placed_peak_bytes(t, pl.greedy_offsets(t)) == 7.0
    r = pl.solve(PlacementData(t))
    assert r.peak_bytes == pytest.approx(brute_force_peak(t)) == pytest.approx(6.0)
    assert r.max_live_bytes == 6.0 and r.fragmentation_bytes == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_greedy_is_valid_and_bounds_the_mip(seed):
    tensors = random_tensors(50 + seed, 6)
    greedy = pl.greedy_offsets(tensors)
    assert pl.is_valid_placement(tensors, greedy)
    assert pl.solve(PlacementData(tensors)).peak_bytes <= pl.placed_peak_bytes(tensors, greedy) + 1e-6


def test_capacity_infeasible_names_least_memory():
    with pytest.raises(InfeasibleError, match="device memory.*needs at least 6 bytes"):
        pl.solve(PlacementData(GREEDY_FRAGMENTS, capacity_bytes=5.5))
    assert pl.solve(PlacementData(GREEDY_FRAGMENTS, capacity_bytes=6.0)).peak_bytes == pytest.approx(6.0)


def test_bilevel_blocks_use_level_one_peaks():
    layer = random_tensors(3, 5)
    inner = pl.solve(PlacementData(layer)).peak_bytes
    blocks = (LayerBlock("l0", layer, 0, 4), LayerBlock("l1", layer, 1, 3), LayerBlock("l2", layer, 4, 6))
    glob = (TensorLifetime("weights", 5.0 * 2 ** 20, 0, 6),)
    r = pl.solve_bilevel(BilevelData(blocks, glob))
    assert [x.peak_bytes for x in r.level1] == pytest.approx([inner] * 3)
    assert r.peak_bytes == pytest.approx(2 * inner + 5.0 * 2 ** 20)  # l0 and l1 overlap, l2 reuses
    assert r.fragmentation_bytes == pytest.approx(0.0, abs=1e-6)
    assert len(r.block_offsets_bytes) == 3


def test_time_limit_returns_incumbent_and_gap():
    rng = random.Random(7)
    tensors = tuple(TensorLifetime(f"t{i}", rng.randint(1, 64) * 2.0 ** 20, s := rng.randint(0, 30),
                                   s + rng.randint(2, 12)) for i in range(40))
    r = pl.solve(PlacementData(tensors), time_limit_s=0.2)
    assert pl.is_valid_placement(tensors, r.offsets_bytes)
    assert r.status in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT)
    if r.status is SolveStatus.TIME_LIMIT:
        assert r.mip_gap is not None and r.mip_gap >= 0
