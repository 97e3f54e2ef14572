"""Unit tests of the caching-allocator model (simhw.sim.allocator).

Expected values follow the rules of pytorch/pytorch c10/cuda/CUDACachingAllocator.cpp as
summarised in the module docstring (512 B rounding, 2 MiB / 20 MiB segments, best fit, split
thresholds, merge on free, no compaction)."""
from __future__ import annotations

import pytest

from simhw.errors import InfeasibleError
from simhw.sim.allocator import (CachingAllocator, round_size, segment_size,
                                 simulate_allocator)

MiB = 1 << 20


def test_rounding_and_segment_sizes():
    assert [round_size(x) for x in (1, 512, 513, 1000)] == [512, 512, 1024, 1024]
    assert segment_size(512) == 2 * MiB
    assert segment_size(MiB) == 2 * MiB
    assert segment_size(MiB + 512) == 20 * MiB
    assert segment_size(10 * MiB) == 10 * MiB
    assert segment_size(10 * MiB + 1) == 12 * MiB


def test_small_requests_share_one_segment_and_are_reused():
    r = simulate_allocator([("alloc", "a", 100), ("alloc", "b", 600), ("free", "a"),
                            ("alloc", "c", 300)])
    assert r.segments_reserved == 1
    assert r.reserved_peak_bytes == 2 * MiB
    assert r.allocated_peak_bytes == 512 + 1024
    assert r.requested_peak_bytes == 600 + 300
    assert r.allocated_bytes == 512 + 1024  # c reused a's cached 512 B block


def test_large_block_split_only_when_remainder_exceeds_1_mib():
    a = CachingAllocator()
    a.malloc("x", 19 * MiB)            # 20 MiB segment, remainder 1 MiB: not split
    assert a.allocated_bytes == 20 * MiB
    a.free("x")
    a.malloc("y", 18 * MiB)            # cached 20 MiB block, remainder 2 MiB > 1 MiB: split
    assert a.allocated_bytes == 18 * MiB
    a.malloc("z", 2 * MiB)             # fits the 2 MiB remainder exactly
    assert a.reserved_bytes == 20 * MiB and a.segments_reserved == 1


def test_fragmentation_from_interleaved_frees():
    """Free every other 4 MiB block of a 20 MiB segment: 8 MiB are free but no 8 MiB hole."""
    ev = [("alloc", i, 4 * MiB) for i in range(5)]
    ev += [("free", 1), ("free", 3), ("alloc", "big", 8 * MiB)]
    r = simulate_allocator(ev)
    assert r.segments_reserved == 2          # the 8 MiB request needs a new 20 MiB segment
    assert r.reserved_peak_bytes == 40 * MiB
    assert r.allocated_peak_bytes == 20 * MiB
    assert r.fragmentation_bytes == 20 * MiB
    assert r.fragmentation_at_reserved_peak_bytes == 40 * MiB - 20 * MiB


def test_freed_neighbours_merge_back_into_one_block():
    a = CachingAllocator()
    for k in "abc":
        a.malloc(k, 4 * MiB)
    for k in "bac":
        a.free(k)
    a.malloc("whole", 20 * MiB - 1024)       # only fits if the segment merged back
    assert a.segments_reserved == 1


def test_capacity_releases_cached_segments_then_raises():
    cap = 40 * MiB
    a = CachingAllocator(capacity_bytes=cap)
    a.malloc("a", 15 * MiB)                  # 16 MiB segment
    a.malloc("b", 15 * MiB)                  # 16 MiB segment
    a.free("a")                              # cached, segment fully free
    a.malloc("c", 20 * MiB)                  # 16 + 16 + 20 > 40: release a's segment, retry
    assert a.cache_flushes == 1 and a.reserved_bytes == 36 * MiB
    with pytest.raises(InfeasibleError, match="out of memory"):
        a.malloc("d", 10 * MiB)


def test_bad_events():
    with pytest.raises(ValueError, match="not allocated"):
        simulate_allocator([("free", "x")])
    with pytest.raises(ValueError, match="already live"):
        simulate_allocator([("alloc", 1, 10), ("alloc", 1, 10)])
    with pytest.raises(ValueError, match="expected"):
        simulate_allocator([("alloc", 1)])
    r = simulate_allocator([("alloc", 0, 0), ("free", 0)])
    assert r.reserved_peak_bytes == 0
