"""How CTAs share an SM's pipelines and the GPU's SMs: the p-norm of concurrent limits, the block
scheduler's makespans, the stream-K GEMM schedule, the small single-stage GEMM kernel and
FlashAttention-2's split-KV heuristic (used by
cost/roofline.py's GEMM and cost/attention.py's attention models)."""
from __future__ import annotations

import heapq
import math


def overlap(times: tuple[float, ...], p: float) -> float:
    """Time of work limited by several pipelines at once: the p-norm of their times. Large p (> 50)
    is the max (perfect overlap); smaller p charges for the stalls each limit causes the others
    when their times are close (a max of two equal times becomes 2^(1/p) of it)."""
    if p > 50:
        return max(times)
    top = max(times)
    if top <= 0:
        return 0.0
    return top * sum((t / top) ** p for t in times) ** (1.0 / p)


def dispatch(durations: list[float], repeats: int, slots: int) -> float:
    """Makespan of ``repeats`` copies of the CTA sequence ``durations``, handed out in that order
    to whichever of ``slots`` slots frees first (the GPU's block scheduler)."""
    count = len(durations) * repeats
    if count <= slots:
        return max(durations)
    if count > _MAX_DISPATCH:   # large grids: list-scheduling bound plus the last CTA's length
        return sum(durations) * repeats / slots + durations[-1]
    free = [0.0] * slots
    for _ in range(repeats):
        for t in durations:
            heapq.heapreplace(free, free[0] + t)
    return max(free)


_MAX_DISPATCH = 200_000


def schedule(lengths: list[tuple[float, int]], slots: int) -> float:
    """Makespan of CTAs (duration, count) over ``slots`` concurrent slots: whole waves when all CTAs
    are equal, else longest-first list scheduling ~ max(longest, total / slots)."""
    count = sum(c for _, c in lengths)
    if count == 0:
        return 0.0
    longest = max(t for t, _ in lengths)
    if all(t == longest for t, _ in lengths):
        return math.ceil(count / slots) * longest
    total = sum(t * c for t, c in lengths)
    return max(longest, total / slots)


def stream_k(m, n, k, batch, tm, tn, e, slots, p_slot, sm_port, l2_bw, bw_read, bw_write, latency,
             read_bytes, eff, eb=None, ea=None, ec=None) -> tuple[float, float, float] | None:
    """(time, compute, memory) of a stream-K kernel with tm x tn tiles (CUTLASS sm90 stream-K tile
    scheduler; Osama et al., "Stream-K", PPoPP 2023): every SM takes an equal share of all tiles'
    k-iterations, so no wave is partly idle; an SM whose share ends inside a tile writes its FP32
    partial tile, and the tile's owner reads the others' partials back through its own L2 port. Used when the grid has at least
    two k-iterations per SM. Inputs as in roofline.gemm_time_s: e bytes per element, p_slot FLOP/s
    per SM, sm_port / l2_bw / bw_read / bw_write in bytes/s, latency in s, read_bytes the operands'
    HBM bytes, eb / ea the k x n / m x k operands' bytes per element and ec the output's (default e)."""
    eb = e if eb is None else eb
    ea = e if ea is None else ea
    ec = e if ec is None else ec
    kt = math.ceil(k / eff.gemm_tile_k)
    tiles = math.ceil(m / tm) * math.ceil(n / tn) * batch
    if tiles * kt < 2 * slots:
        return None
    kc = math.ceil(tiles * kt / slots) * eff.gemm_tile_k        # k-extent of one SM's share
    um, un = min(tm, m), min(tn, n)
    t_mma = 2.0 * tm * tn * kc / p_slot
    t_l2 = max((um * ea + un * eb) * kc / sm_port, (um * ea + un * eb / max(1, eff.gemm_cluster)) * kc * slots / l2_bw)
    t_rd = read_bytes / bw_read
    main = max(overlap((max(t_mma, t_l2), t_rd), eff.gemm_overlap),
               math.ceil(kc / (eff.gemm_tile_k * eff.gemm_pipeline_stages)) * latency)
    share = kc // eff.gemm_tile_k
    whole_tiles = share % kt == 0 and (tiles * kt) % slots == 0    # every share starts and ends on a tile
    # the tile's owner reads the other SMs' FP32 partials of its tile through its own L2 port
    parts = max(2, math.ceil(kt / share) + (1 if kt % share else 0))
    fixup = 0.0 if whole_tiles else (parts - 1) * um * un * 4 / sm_port + latency
    t_wr = um * un * ec * min(slots, tiles) / bw_write           # the last tiles' stores
    wr_all = m * n * ec * batch / bw_write
    if eff.gemm_pingpong_max_tile_elems and tm * tn > eff.gemm_pingpong_max_tile_elems:
        # a cooperative kernel stores each tile after its main loop (roofline.gemm_time_s)
        return main + wr_all + fixup + eff.gemm_cta_overhead_s, max(t_mma, t_l2), t_rd + wr_all
    total = max(main, wr_all) + fixup + t_wr + eff.gemm_cta_overhead_s
    return total, max(t_mma, t_l2), t_rd + wr_all


def light_gemm(m, n, k, batch, eff, units, p_sm, bw_read, bw_write, read_bytes,
               ec) -> tuple[float, float, float] | None:
    """(time, compute, memory) of the library's small single-stage kernel, or None where it has
    none or would not run it (sm80 cuBLAS: CUTLASS WMMA kernels with gemm_light_tile square tiles,
    k-tiles of gemm_light_tile_k and one stage, e.g.
    ``cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_32x1_tn_align8``: tile 32 x 32, k-tile
    32, one stage). With one stage nothing hides a k-tile's load: each costs
    gemm_light_k_step (an L2 round trip, the barrier and the WMMA chain), one CTA per SM; the
    smallest kernels' launch already holds one such step, so the first is not charged again. The
    operands' and output's bytes bound it from below as in gemm_time_s. Its kernels are f16 / bf16
    ones (roofline.gemm_time_s offers it to 16-bit GEMMs only). cuBLAS runs it for
    m <= gemm_light_max_m, and otherwise only for problems of at least gemm_light_min_macs
    multiply-adds (below that on A100 it picks a kernel about 1.2 us slower: the aiconfigurator
    rows with m >= 32 switch at exactly 2^21 MACs for k = 32, 64 and 128). Inputs as in
    roofline.gemm_time_s: p_sm FLOP/s per SM, bw_* bytes/s, read_bytes the operands' main-memory
    bytes, ec the output's bytes per element."""
    tile, step = eff.gemm_light_tile, eff.gemm_light_k_step_s
    if not tile or step <= 0 or (m > eff.gemm_light_max_m and m * n * k * batch < eff.gemm_light_min_macs):
        return None
    ctas = math.ceil(m / tile) * math.ceil(n / tile) * batch
    k_tiles = math.ceil(k / eff.gemm_light_tile_k)
    steps = math.ceil(ctas / units) * k_tiles                  # k-tiles one SM walks, wave after wave
    t_mma = 2.0 * tile * tile * eff.gemm_light_tile_k / p_sm
    chain = steps * max(step, t_mma) - step
    mem = read_bytes / bw_read + m * n * ec * batch / bw_write
    return max(chain, mem), steps * t_mma, mem


def split_heuristic(base_ctas: int, slots: int, kv_blocks: int, max_splits: int) -> int:
    """FlashAttention-2's num_splits_heuristic (flash_api.cpp): split the keys over CTAs only when
    the (batch x heads x q-blocks) CTAs fill less than 80% of the slots; take the smallest split
    whose wave efficiency is within 85% of the best."""
    if base_ctas >= 0.8 * slots:
        return 1
    max_splits = min(max_splits, slots, kv_blocks)
    if max_splits <= 1:
        return 1

    def eligible(s: int) -> bool:
        return s == 1 or math.ceil(kv_blocks / s) != math.ceil(kv_blocks / (s - 1))

    effs = {}
    for s in range(1, max_splits + 1):
        if eligible(s):
            waves = base_ctas * s / slots
            effs[s] = waves / math.ceil(waves)
    best = max(effs.values())
    for s in sorted(effs):
        if effs[s] >= 0.85 * best:
            return s
    return 1
