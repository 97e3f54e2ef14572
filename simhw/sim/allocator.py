"""A model of PyTorch's CUDA caching allocator: reserved versus allocated bytes.

Fed a sequence of ``("alloc", key, size_bytes)`` and ``("free", key)`` events, it reports the peak
bytes *allocated* (blocks handed out, after rounding) and *reserved* (segments obtained from the
device), and the gap between them, which is what caching and fragmentation cost.

Rules, from ``pytorch/pytorch:c10/cuda/CUDACachingAllocator.cpp`` (constants kMinBlockSize,
kSmallSize, kSmallBuffer, kLargeBuffer, kMinLargeAlloc, kRoundLarge; functions round_size,
get_allocation_size, get_free_block, should_split, free_block/try_merge_blocks,
release_cached_blocks), default configuration, one stream:

- Sizes round up to a multiple of 512 B. Requests up to 1 MiB use the small pool, larger ones
  the large pool.
- A request takes the smallest cached free block of its pool that fits (best fit). If none fits,
  a new segment is reserved: 2 MiB for small requests, 20 MiB for requests under 10 MiB, else
  the size rounded up to 2 MiB.
- A block larger than the request is split when the remainder is >= 512 B (small pool) or
  > 1 MiB (large pool); the remainder stays cached as a free block.
- A freed block merges with free neighbours in its segment and stays cached; nothing moves
  (no compaction), and segments are returned to the device only when a new segment would exceed
  ``capacity_bytes``: then all fully free segments are released and the request retried (as
  PyTorch does on an out-of-memory error before giving up).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable

from ..errors import InfeasibleError

MIN_BLOCK_BYTES = 512
SMALL_REQUEST_BYTES = 1 << 20
SMALL_SEGMENT_BYTES = 2 << 20
LARGE_SEGMENT_BYTES = 20 << 20
MIN_LARGE_ALLOC_BYTES = 10 << 20
ROUND_LARGE_BYTES = 2 << 20


def round_size(size_bytes: int) -> int:
    """Round a request up to a multiple of 512 B (at least 512 B)."""
    return max(MIN_BLOCK_BYTES, -(-size_bytes // MIN_BLOCK_BYTES) * MIN_BLOCK_BYTES)


def segment_size(rounded_bytes: int) -> int:
    """Bytes reserved for a new segment that must hold ``rounded_bytes``."""
    if rounded_bytes <= SMALL_REQUEST_BYTES:
        return SMALL_SEGMENT_BYTES
    if rounded_bytes < MIN_LARGE_ALLOC_BYTES:
        return LARGE_SEGMENT_BYTES
    return -(-rounded_bytes // ROUND_LARGE_BYTES) * ROUND_LARGE_BYTES


@dataclass(eq=False)
class _Block:
    segment: int
    offset: int
    size: int
    small: bool
    allocated: bool = False
    prev: "_Block | None" = None
    next: "_Block | None" = None

    def key(self) -> tuple[int, int, int]:
        return (self.size, self.segment, self.offset)


@dataclass(frozen=True)
class AllocatorReport:
    """Peaks over the whole event sequence, in bytes.

    ``fragmentation_bytes`` = reserved peak - allocated peak: what the allocator reserves beyond
    the most it ever hands out. ``fragmentation_at_reserved_peak_bytes`` = reserved - allocated
    at the moment the reserved peak is first reached. ``requested_peak_bytes`` is before rounding.
    """

    reserved_peak_bytes: int
    allocated_peak_bytes: int
    requested_peak_bytes: int
    fragmentation_bytes: int
    fragmentation_at_reserved_peak_bytes: int
    reserved_bytes: int
    allocated_bytes: int
    segments_reserved: int
    cache_flushes: int


class CachingAllocator:
    """The allocator's state; call :meth:`malloc` and :meth:`free`, then :meth:`report`."""

    def __init__(self, capacity_bytes: int | None = None) -> None:
        self.capacity_bytes = capacity_bytes
        self._free: dict[bool, list[tuple[int, int, int]]] = {True: [], False: []}
        self._by_key: dict[tuple[int, int, int], _Block] = {}
        self._live: dict[object, tuple[_Block | None, int]] = {}
        self._segments: dict[int, tuple[_Block, int]] = {}  # id -> (first block, size)
        self._next_segment = 0
        self.reserved_bytes = self.allocated_bytes = self.requested_bytes = 0
        self.reserved_peak = self.allocated_peak = self.requested_peak = 0
        self.gap_at_reserved_peak = 0
        self.segments_reserved = self.cache_flushes = 0

    def _cache(self, block: _Block) -> None:
        bisect.insort(self._free[block.small], block.key())
        self._by_key[block.key()] = block

    def _uncache(self, block: _Block) -> None:
        lst = self._free[block.small]
        del lst[bisect.bisect_left(lst, block.key())]
        del self._by_key[block.key()]

    def _new_segment(self, rounded: int, small: bool) -> _Block:
        size = segment_size(rounded)
        cap = self.capacity_bytes
        if cap is not None and self.reserved_bytes + size > cap:
            self._release_cached_segments()
            if self.reserved_bytes + size > cap:
                raise InfeasibleError(
                    f"caching allocator out of memory: a {rounded} B request needs a new "
                    f"{size} B segment but {self.reserved_bytes} of {cap} B are reserved "
                    f"({self.allocated_bytes} B allocated; the rest is cached in split "
                    "segments). Lower the peak or the fragmentation.")
        seg = self._next_segment
        self._next_segment += 1
        block = _Block(seg, 0, size, small)
        self._segments[seg] = (block, size)
        self.reserved_bytes += size
        self.segments_reserved += 1
        return block

    def _release_cached_segments(self) -> None:
        self.cache_flushes += 1
        for seg, (first, size) in list(self._segments.items()):
            if not first.allocated and first.next is None:
                self._uncache(first)
                del self._segments[seg]
                self.reserved_bytes -= size

    def malloc(self, key, size_bytes: int) -> None:
        """Allocate ``size_bytes`` under ``key`` (any hashable, unique while live)."""
        if key in self._live:
            raise ValueError(f"allocation {key!r} is already live")
        size_bytes = int(size_bytes)
        if size_bytes < 0:
            raise ValueError(f"allocation {key!r} has negative size {size_bytes}")
        if size_bytes == 0:
            self._live[key] = (None, 0)
            return
        rounded = round_size(size_bytes)
        small = rounded <= SMALL_REQUEST_BYTES
        free = self._free[small]
        i = bisect.bisect_left(free, (rounded, -1, -1))
        if i < len(free):
            block = self._by_key[free[i]]
            self._uncache(block)
        else:
            block = self._new_segment(rounded, small)
        remaining = block.size - rounded
        if remaining >= MIN_BLOCK_BYTES if small else remaining > SMALL_REQUEST_BYTES:
            rest = _Block(block.segment, block.offset + rounded, remaining, small,
                          prev=block, next=block.next)
            if block.next is not None:
                block.next.prev = rest
            block.next, block.size = rest, rounded
            self._cache(rest)
        block.allocated = True
        self._live[key] = (block, size_bytes)
        self.allocated_bytes += block.size
        self.requested_bytes += size_bytes
        self._update_peaks()

    def free(self, key) -> None:
        """Free the allocation ``key``; its block merges with free neighbours and stays cached."""
        if key not in self._live:
            raise ValueError(f"free of {key!r}, which is not allocated")
        block, size_bytes = self._live.pop(key)
        if block is None:
            return
        self.allocated_bytes -= block.size
        self.requested_bytes -= size_bytes
        block.allocated = False
        for nb in (block.prev, block.next):
            if nb is not None and not nb.allocated:
                self._uncache(nb)
                first, second = (nb, block) if nb is block.prev else (block, nb)
                first.size += second.size
                first.next = second.next
                if second.next is not None:
                    second.next.prev = first
                if block is second:
                    block = first
        self._cache(block)

    def _update_peaks(self) -> None:
        if self.reserved_bytes > self.reserved_peak:
            self.reserved_peak = self.reserved_bytes
            self.gap_at_reserved_peak = self.reserved_bytes - self.allocated_bytes
        self.allocated_peak = max(self.allocated_peak, self.allocated_bytes)
        self.requested_peak = max(self.requested_peak, self.requested_bytes)

    def report(self) -> AllocatorReport:
        return AllocatorReport(
            reserved_peak_bytes=self.reserved_peak, allocated_peak_bytes=self.allocated_peak,
            requested_peak_bytes=self.requested_peak,
            fragmentation_bytes=self.reserved_peak - self.allocated_peak,
            fragmentation_at_reserved_peak_bytes=self.gap_at_reserved_peak,
            reserved_bytes=self.reserved_bytes, allocated_bytes=self.allocated_bytes,
            segments_reserved=self.segments_reserved, cache_flushes=self.cache_flushes)


def simulate_allocator(events: Iterable[tuple], capacity_bytes: int | None = None
                       ) -> AllocatorReport:
    """Replay ``("alloc", key, size_bytes)`` / ``("free", key)`` events and report the peaks."""
    alloc = CachingAllocator(capacity_bytes)
    for n, event in enumerate(events):
        if event[0] == "alloc" and len(event) == 3:
            alloc.malloc(event[1], event[2])
        elif event[0] == "free" and len(event) == 2:
            alloc.free(event[1])
        else:
            raise ValueError(f"event {n} is {event!r}; expected ('alloc', key, size_bytes) or "
                             "('free', key)")
    return alloc.report()
