"""Time of one op on one device: a roofline with an efficiency model read from the spec.

``time = body + launch`` where the body is
- GEMM (gemm_time_s): the fastest of the library's tile shapes and split-K factors; CTAs run in
  waves over the SMs (tile and wave quantisation); a CTA's main loop is limited by its SM's share
  of the tensor peak x compute_fraction, of L2 bandwidth (shared tiles read once per multicast
  cluster on Hopper and later) and of HBM read bandwidth (on-chip and HBM times joined as a
  p-norm, gemm_overlap), and by memory latency per pipeline of k-tiles (small-m GEMMs are
  memory-bound); each wave then writes its output tiles (write_fraction; under the next wave's
  main loop with gemm_epilogue_overlap) and pays gemm_cta_overhead; split-K adds a reduction pass;
  with gemm_stream_k each tile shape also has a stream-K schedule (cost/ctas.py stream_k);
- attention (attention_time_s): FlashAttention-2/3 prefill and split-KV decode kernels, CTA by CTA;
- recurrent scans (linear attention, state space; chunked): ``max(FLOPs / (peak x
  attention_compute_fraction), bytes / (HBM x attention_memory_fraction))``: like FlashAttention
  they run a chunk's small matrix products on tensor cores out of shared memory;
- PyTorch's softmax and norm kernels with a known row width (shape ``row``, ``row_op``): the
  kernel the width dispatches to, its occupancy and its blocks' load chains (cost/rowwise.py);
- elementwise, other norms and others: ``max(FLOPs / peak, bytes / achievable bandwidth)``, the
  bandwidth derated for small transfers (bandwidth_ramp_bytes) or latency-bound (cost/latency.py);
- collectives: NCCL's algorithms and protocols in comm.py.
Every constant lives in the spec's ``efficiency:`` block (spec/model.py: Efficiency). More peak
or more bandwidth never makes an op slower (each path is a minimum over configurations of
functions that do not grow with either), and no op beats ``max(FLOPs / peak, bytes / HBM)``.
Sources: Williams, Waterman, Patterson, "Roofline", CACM 2009; NVIDIA "Matrix Multiplication
Background User's Guide" (tile and wave quantisation); CUTLASS sm80 kernels (tiles, stages,
split-K); Dao, "FlashAttention-2", 2023.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import Enum

from ..spec.model import AttentionKernel, DeviceSpec, DType, Efficiency
from ..workload.graph import Op, OpKind, Phase
from .ctas import dispatch, overlap, schedule, split_heuristic, stream_k
from .embedding import embedding_backward_time_s, is_dense_backward
from .latency import load_latency_time_s
from .rowwise import row_op_of, rowwise_time_s


class Bound(Enum):
    COMPUTE = "compute"
    MEMORY = "memory"
    COMMUNICATION = "communication"
    LATENCY = "latency"


@dataclass(frozen=True)
class OpCost:
    time_s: float
    bound: Bound
    compute_s: float
    memory_s: float
    energy_j: float           # dynamic energy (FLOPs + bytes); static power is added per step
    flop_energy_j: float = 0.0  # the FLOPs' share of energy_j (cost/power.py: a hot die's FLOPs cost more)
    power_limit_s: float = 0.0  # part of time_s the power limit adds (cost/power.py: power_limited)


def _ramp(nbytes: float, ramp_bytes: float) -> float:
    return nbytes / (nbytes + ramp_bytes) if nbytes > 0 else 1.0


def memory_time_s(nbytes: float, hw: DeviceSpec, fraction: float) -> float:
    """Time to move ``nbytes`` through main memory at ``fraction`` of its bandwidth, ramp included."""
    if nbytes <= 0:
        return 0.0
    eff = hw.efficiency
    bw = hw.main_memory.bandwidth_bytes_per_s * fraction * _ramp(nbytes, eff.bandwidth_ramp_bytes)
    return nbytes / bw


def _pow2_range(lo: int, hi: int) -> list[int]:
    out, v = [], 1
    while v <= hi:
        if v >= lo:
            out.append(v)
        v *= 2
    return out


def gemm_tiles(eff: Efficiency) -> tuple[tuple[int, int], ...]:
    """Output tiles (tile_m, tile_n) the GEMM library has (see Efficiency: gemm_*)."""
    return _tiles(eff.gemm_tile_m, eff.gemm_tile_n, eff.gemm_min_tile_m, eff.gemm_min_tile_n,
                  eff.gemm_max_tile_edge, eff.gemm_max_tile_elems)


@functools.lru_cache(maxsize=64)
def _tiles(tile_m: int, tile_n: int, min_m: int, min_n: int, edge: int, area: int) -> tuple[tuple[int, int], ...]:
    edge = edge or 2 * max(tile_m, tile_n)
    area = area or 2 * tile_m * tile_n
    tiles = [(tm, tn) for tm in _pow2_range(min_m, edge) for tn in _pow2_range(min_n, edge) if tm * tn <= area]
    return tuple(tiles) or ((tile_m, tile_n),)


_SPLITS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def _splits(k: float, tile_k: int, max_split: int) -> tuple[int, ...]:
    """Split-K factors the library may use: each split keeps at least two k-tiles."""
    limit = max(1, min(max_split, int(k // (2 * tile_k))))
    return tuple(s for s in _SPLITS if s <= limit)


def l2_hits(shape, e: float, hw: DeviceSpec) -> tuple[bool, bool]:
    """Whether a GEMM's A and B operands are read from L2 rather than main memory.

    A benchmark loop (or a model's step) that reads an operand again after touching ``reuse``
    other bytes finds it still in an LRU cache of capacity C when operand + reuse <= C (the
    operand's stack distance; Mattson et al. 1970, "Evaluation techniques for storage
    hierarchies"). Shape keys ``a_reuse`` / ``b_reuse`` give those bytes (absent or negative: never
    re-read, e.g. a harness that rotates input sets); C is the L2 capacity times
    ``l2_resident_fraction`` (0: residency not modelled)."""
    l2 = hw.memory_level("l2")
    cap = l2.capacity_bytes * hw.efficiency.l2_resident_fraction if l2 is not None else 0.0
    if cap <= 0 or not shape:
        return False, False
    b = shape.get("batch", 1.0)
    sizes = (shape["m"] * shape["k"] * e * b, shape["k"] * shape["n"] * e * b)
    return tuple(shape.get(key, -1.0) >= 0 and size + shape[key] <= cap
                 for key, size in zip(("a_reuse", "b_reuse"), sizes))


def gemm_time_s(m: float, n: float, k: float, batch: float, dtype: DType, hw: DeviceSpec,
                a_in_l2: bool = False, b_in_l2: bool = False) -> tuple[float, float, float]:
    """(time, compute-limited part, memory-limited part) of one GEMM, launch excluded.

    The library runs the fastest of its tile shapes and split-K factors (cuBLAS heuristics pick
    near-best kernels). For a config with tiles tm x tn, split s, CTAs run in waves over the SMs;
    one CTA's main loop is limited by the tensor cores (its SM's share of peak x compute_fraction),
    by its SM's share of L2 bandwidth (operand tiles of (tm + tn) x k) and, across the wave, by
    HBM (each operand read once: l2_reuse re-reads it); the on-chip (tensor, L2) and HBM times
    join as a p-norm (p = gemm_overlap: each stalls the other when they are close, as in
    attention_time_s), and the memory latency of its k-tile pipeline bounds it. Then it writes its
    output tile (HBM write bandwidth, FP32 partials when split) and pays gemm_cta_overhead
    (pipeline fill and drain). Warp-specialized persistent kernels (gemm_epilogue_overlap: sm90
    and later) store one tile while their other consumer warp group runs the next main loop, so
    only the last wave's stores add to the time.
    Split-K partials are reduced by one more memory pass (a kernel of its own, one more launch, with
    gemm_split_k_kernel: cuBLASLt on Hopper). gemm_prologue is charged once per GEMM kernel. An
    operand already in L2 (``a_in_l2``,
    ``b_in_l2``: l2_hits) costs no main-memory reads; the k-tile pipeline keeps main memory's
    latency (pricing it at the L2's made aiconfigurator's small GEMMs too fast).
    """
    if m <= 0 or n <= 0 or k <= 0 or batch <= 0:
        return 0.0, 0.0, 0.0
    eff = hw.efficiency
    e = dtype.bytes
    units = max(hw.compute_units, 1)
    slots = units * eff.gemm_tiles_per_sm
    peak = hw.peak(dtype) * eff.compute_fraction
    p_slot = peak / slots
    bw = hw.main_memory.bandwidth_bytes_per_s
    bw_read = bw * eff.memory_fraction
    bw_write = bw * eff.write_fraction
    l2 = hw.memory_level("l2")
    l2_bw = (l2.bandwidth_bytes_per_s if l2 is not None else 2.5 * bw) * eff.l2_fraction * eff.gemm_l2_ratio
    sm_port = eff.sm_l2_bytes_per_cycle * hw.clock_hz if hw.clock_hz > 0 else l2_bw / slots
    latency = hw.main_memory.latency_s
    read_bytes = (m * k * (not a_in_l2) + k * n * (not b_in_l2)) * e * batch * eff.l2_reuse
    cluster = max(1, eff.gemm_cluster)
    p_overlap = eff.gemm_overlap
    inv_p = 1.0 / p_overlap
    blend_from = 0.05 if p_overlap <= 50 else math.inf    # lo / hi below which the p-norm is the max
    epilogue_overlap, cta_overhead = eff.gemm_epilogue_overlap, eff.gemm_cta_overhead_s
    best = None
    for tm, tn in gemm_tiles(eff):
        tiles = math.ceil(m / tm) * math.ceil(n / tn) * batch
        um, un = min(tm, m), min(tn, n)                      # rows/cols of the tile that hold data
        for split in _splits(k, eff.gemm_tile_k, eff.gemm_max_split_k):
            ctas = tiles * split
            kc = math.ceil(k / split / eff.gemm_tile_k) * eff.gemm_tile_k
            t_mma = 2.0 * tm * tn * kc / p_slot
            # a CTA keeps `stages` k-tiles in flight: one memory latency per `stages` k-tiles
            t_lat = math.ceil(kc / (eff.gemm_tile_k * eff.gemm_pipeline_stages)) * latency
            rd_cta = read_bytes / ctas
            wr_cta = um * un * (4 if split > 1 else e)
            full, rest = divmod(ctas, slots)
            total = comp = mem = last_wr = 0.0
            for active, count in ((slots, full), (rest, 1 if rest else 0)):
                if not count:
                    continue
                # the SM takes both operand tiles through its port; with a multicast cluster the L2
                # reads the shared (n-side) tile once for the cluster's CTAs
                t_l2 = max((um + un) * kc * e / sm_port, (um + un / cluster) * kc * e * active / l2_bw)
                t_rd = active * rd_cta / bw_read
                # overlap((on-chip, HBM), gemm_overlap) inlined (cost/ctas.py); a limit under a twentieth
                # of the other changes it by less than 20^-p / p and is dropped
                hi = t_mma if t_mma > t_l2 else t_l2
                lo = t_rd
                if lo > hi:
                    hi, lo = lo, hi
                main = hi if lo <= blend_from * hi else hi * (1.0 + (lo / hi) ** p_overlap) ** inv_p
                if t_lat > main:
                    main = t_lat
                t_wr = active * wr_cta / bw_write
                if epilogue_overlap:            # a wave's stores run under the next wave's main loop
                    total += count * (max(main, t_wr) + cta_overhead)
                    last_wr = t_wr
                else:
                    total += count * (main + t_wr + cta_overhead)
                comp += count * max(t_mma, t_l2)
                mem += count * (t_rd + t_wr)
            total += last_wr                    # nothing runs under the last wave's stores
            if split > 1:   # reduce the FP32 partials: read split x m x n x 4, write m x n
                red = (split * m * n * 4 * batch) / bw_read + m * n * e * batch / bw_write
                total += red + latency + eff.gemm_cta_overhead_s + (eff.launch_s if eff.gemm_split_k_kernel else 0.0)
                mem += red
            if best is None or total < best[0]:
                best = (total, comp, mem)
        if eff.gemm_stream_k:
            cand = stream_k(m, n, k, batch, tm, tn, e, slots, p_slot, sm_port, l2_bw, bw_read, bw_write,
                            latency, read_bytes, eff)
            if cand is not None and cand[0] < best[0]:
                best = cand
    return (best[0] + eff.gemm_prologue_s, best[1], best[2])


def attention_time_s(op: Op, hw: DeviceSpec) -> tuple[float, float, float]:
    """(time, compute-limited part, memory-limited part) of a FlashAttention kernel, launch excluded.

    Dao, "FlashAttention-2" (2023) §3: CTAs of attention_tile_q query rows of one head walk the
    keys in blocks of attention_tile_kv (causal: only up to the diagonal). One CTA takes
    attention_cta_overhead + loading Q and storing O + the longest of its tensor-core work
    (4·rows·block·head_dim FLOPs per block at its SM's share of peak x attention_compute_fraction),
    its K/V bytes through its SM's port to L2 (decode: plus attention_block_latency per block, the
    dependent K then V round trips nothing hides).
    Prefill: with a paged KV cache (shape key kv_write, serving engines) FlashAttention-2 runs its
    split-KV kernel (attention_split_tile_q x attention_split_tile_kv tiles) unsplit; without one
    it may split the keys when the CTAs would not fill the SMs. FlashAttention-2 hands out the
    q-blocks of each head in launch order, so causal grids finish on their longest CTAs (simulated
    block scheduler); FlashAttention-3's persistent scheduler takes the longest first and pays
    attention_cta_overhead once per SM rather than per tile (its producer warp loads the next
    tile under the current one).
    Decode (one query row per sequence) packs a GQA group into one CTA per (sequence, KV head) and
    splits the keys over CTAs when the SMs would idle (flash-decoding: FlashAttention-2's split
    heuristic on 64 x attention_split_tile_kv tiles, capped at attention_max_splits); such a CTA
    pays attention_first_block_latency once; split partials are combined by one more kernel
    (launch + one CTA's dependent loads + the FP32 partials). FlashAttention-2 copies q in and O
    back around the GQA swap when there are several sequences and KV heads (two small kernels).
    MHA decode (no group to swap into the query rows) runs the unsplit kernel, as the varlen path
    does. CTAs run attention_ctas_per_sm per SM (dense-cache decode: at least two). HBM carries Q
    and O once and K/V once per wave of CTAs that share them through L2, at
    attention_memory_fraction; the CTA schedule and the HBM
    time join as a p-norm (p = attention_overlap; large p = max). A KV-cache write (kv_write) adds
    one copy kernel. With a sliding window (shape key window) a causal q-block walks only the key
    blocks its rows see, and decode reads the last window keys. K and V take 2·head_dim elements
    per key token and KV head, or the shape's kv_token_elems when they share one cached vector
    (absorbed MLA decode: workload/transformer.py _mla_ops); head_dim is then the mean of the
    QK^T and AV dims, which keeps the FLOPs exact. Backward (more FLOPs per op than the forward)
    scales the block work and bytes.
    """
    s = op.shape
    eff = hw.efficiency
    b, h, sq, skv, d = (float(s[k]) for k in ("batch", "heads", "seq_q", "seq_kv", "head_dim"))
    kvh = float(s.get("kv_heads", h)) or h
    causal = bool(s.get("causal", 0.0)) and sq > 1
    window = float(s.get("window", 0.0))     # sliding-window attention: keys within `window` of the query
    if window and sq == 1:
        skv = min(skv, window)
    if b <= 0 or h <= 0 or sq <= 0 or skv <= 0 or d <= 0:
        return 0.0, 0.0, 0.0
    e = op.dtype.bytes
    decode = sq == 1
    fa2 = eff.attention_kernel is AttentionKernel.FA2
    # FlashAttention-3's prefill kernel is persistent and warp-specialized (Shah et al. 2024 §3.1):
    # one CTA per SM loops over tiles, its producer warp loading the next tile while the consumers
    # finish this one, so the CTA set-up is paid once per SM, not per tile
    persistent = not fa2 and not decode
    # a paged KV cache (serving engines: shape key paged, or kv_write when the op also writes it)
    paged = bool(s.get("paged", 0.0) or s.get("kv_write", 0.0))
    units = max(hw.compute_units, 1)
    per_sm = max(eff.attention_ctas_per_sm, 1)
    if decode and not paged:
        # a dense cache decodes with PyTorch's FlashAttention-2 kernels (flash_fwd_splitkv_kernel,
        # hdim 128: 64 x 128 tiles, (64 + 2 x 128) x 128 x 2 B = 80 KB of shared memory), which
        # fit at least two CTAs per SM on sm80 and later, whatever kernel the spec's engine runs
        per_sm = max(per_sm, _DENSE_DECODE_CTAS_PER_SM)
    slots = units * per_sm
    p_cta = hw.peak(op.dtype) * eff.attention_compute_fraction / slots
    bw = hw.main_memory.bandwidth_bytes_per_s
    l2 = hw.memory_level("l2")
    l2_bw = (l2.bandwidth_bytes_per_s if l2 is not None else 2.5 * bw) * eff.l2_fraction
    sm_port = eff.sm_l2_bytes_per_cycle * hw.clock_hz if hw.clock_hz > 0 else l2_bw / units
    fwd_flops = 4.0 * b * h * sq * skv * d * (_causal_share(sq, skv) if causal else 1.0)
    work = max(1.0, op.flops / fwd_flops) if fwd_flops > 0 and op.flops > 0 else 1.0
    if decode:   # GQA group packed as the query rows of one CTA per (sequence, kv head)
        rows = min(float(eff.attention_tile_q), 16.0 * math.ceil(h / kvh / 16.0))
        # FlashAttention-2's varlen path (mha_varlen_fwd, paged serving caches) splits the keys only
        # when the GQA group is swapped into the query rows (seqlen_q == 1 and heads > kv_heads); MHA
        # decode there runs one CTA per sequence and head, with no combine. A dense cache (mha_fwd,
        # e.g. PyTorch SDPA) takes the split heuristic for MHA and GQA alike
        split_kernel = h > kvh or not paged
        bkv = eff.attention_split_tile_kv if split_kernel else eff.attention_tile_kv
        kv_blocks = math.ceil(skv / bkv)
        base = int(b * kvh)
        splits = split_heuristic(base, slots, kv_blocks, eff.attention_max_splits) if split_kernel else 1
        blocks_per_cta = math.ceil(kv_blocks / splits)
        lengths_blocks = [(blocks_per_cta, base * splits)]
    else:
        # a paged KV cache (serving engines; shape key paged or kv_write) runs FlashAttention-2's split-KV
        # kernel (flash_api.cpp: force_split_kernel = paged_KV) with its tiles, but unsplit: the
        # varlen path splits keys only for GQA decode. Unpaged (mha_fwd) prefill may split the keys
        # when the CTAs would not fill the SMs; the decision counts the split kernel's tiles.
        split_kernel = False
        split_tiles = paged and fa2
        append_rows: list[float] = []
        rows = float(eff.attention_split_tile_q if split_tiles else eff.attention_tile_q)
        bkv = eff.attention_split_tile_kv if split_tiles else eff.attention_tile_kv
        q_blocks = math.ceil(sq / rows)
        kv_blocks = math.ceil(skv / bkv)
        splits = 1
        if not split_tiles or s.get("kv_append", 0.0):
            # mha_fwd_kvcache (flash_attn_with_kvcache) takes the split heuristic on its split-KV tiles
            split_q = math.ceil(sq / max(eff.attention_split_tile_q, 1))
            split_kv = math.ceil(skv / eff.attention_split_tile_kv)
            splits = split_heuristic(int(b * h * split_q), slots, split_kv, eff.attention_max_splits)
        lengths_blocks = []
        offset = skv - sq
        for i in range(q_blocks):
            if causal:
                last = offset + min((i + 1) * rows, sq)
                n = math.ceil(min(skv, last) / bkv)
                if window:   # the block's first query row sees keys from row - window + 1 on
                    n -= math.floor(max(0.0, offset + i * rows - window + 1) / bkv)
            else:
                n = kv_blocks
            lengths_blocks.append((math.ceil(n / splits), int(b * h) * splits))
            # flash_attn_with_kvcache given the new k, v (shape key kv_append) appends them inside the
            # kernel: every CTA copies the new tokens of its key range into the cache before its main
            # loop, the same rows again for each q-block and each head of a GQA group
            # (flash_fwd_kernel.h compute_attn_1rowblock_splitkv, Append_KV)
            append_rows.append(min((i + 1) * rows, sq) if causal else sq)
    active = max(1, min(slots, sum(c for _, c in lengths_blocks)))
    share = max(1.0, min(float(per_sm), active / units))   # CTAs sharing one SM
    port = min(sm_port / share, l2_bw / active)             # one CTA's L2 -> SM bandwidth
    t_mma = work * 4.0 * rows * bkv * d * share / (p_cta * per_sm)
    if d != _REF_HEAD_DIM and hw.clock_hz > 0:
        # attention_compute_fraction is the kernel's rate at head_dim 128; of a block's time there,
        # the softmax's exponentials (one per score, on the SM's special-function units) do not
        # scale with head_dim while the two MMAs do (Shah et al. 2024 §3: H100 has 989 TFLOP/s of
        # MMA but 3.9 TFLOP/s of exponentials)
        t_ref = t_mma * _REF_HEAD_DIM / d
        t_exp = min(work * rows * bkv * share / (eff.attention_exp_per_clock * hw.clock_hz), 0.8 * t_ref)
        t_mma = (t_ref - t_exp) * d / _REF_HEAD_DIM + t_exp
    if op.phase is Phase.BWD:   # the backward kernel (2.5x the forward's FLOPs) runs its tiles at a lower rate
        t_mma /= eff.attention_backward_fraction
    if fa2 and eff.sm_shared_bytes_per_cycle > 0 and hw.clock_hz > 0:
        # FlashAttention-2 splits a CTA's query rows over its warps, and every warp reads the whole
        # K and V tiles from shared memory for its MMAs (Dao 2023 §3.3): attention_warps x 2 x block x
        # head_dim x e bytes a block, against the tile's FLOPs. The 64-row split-KV kernel of paged
        # caches reads twice the bytes per FLOP of the 128-row kernel (16 rows per warp, not 32).
        # Tensor pipes and shared-memory reads stall one another as the CTA schedule and HBM do
        # (p-norm, attention_overlap)
        t_smem = (work * eff.attention_warps * 2.0 * bkv * d * e * share
                  / (eff.sm_shared_bytes_per_cycle * hw.clock_hz))
        t_mma = overlap((t_mma, t_smem), eff.attention_overlap)
    # K and V bytes per key token and KV head (shape key kv_token_elems: what the cache holds per
    # token when K and V share it, as MLA's latent does; else K and V of head_dim each)
    kv_tok = float(s.get("kv_token_elems", 2.0 * d)) * e
    # paged decode waits on each block's K, V loads; the dense kernel's cp.async prefetch of the next
    # block (FlashAttention-2 flash_fwd_kernel) hides all but the first
    lat = eff.attention_block_latency_s if decode and paged else 0.0
    first = eff.attention_first_block_latency_s if decode and split_kernel else 0.0
    q_rows = min(rows, sq * (h / kvh if decode else 1.0))
    t_qo = 2.0 * q_rows * d * e / port                    # load Q, store O
    merged: dict[float, int] = {}
    in_order: list[float] = []
    append = bool(s.get("kv_append", 0.0)) and not decode
    for j, (n, c) in enumerate(lengths_blocks):
        tokens = min(n * bkv, skv)
        stream = work * tokens * kv_tok / port
        if decode:   # nothing to overlap a block's dependent K, V loads with: latency + transfer per block
            stream += n * lat
        t = (0.0 if persistent else eff.attention_cta_overhead_s) + t_qo + first + max(n * t_mma, stream)
        if append:   # read the new K, V rows and write them into the cache, through the SM's L2 port
            t += append_rows[j] * 2.0 * kv_tok / port
        merged[t] = merged.get(t, 0) + c
        in_order.append(t)
    # HBM: Q and O once; K/V once per wave of CTAs that share them through L2 (the q-blocks of one
    # head, and the heads of one GQA group, run side by side)
    kv_unique = b * skv * kvh * kv_tok
    if decode:
        hbm = 2.0 * b * h * d * e + kv_unique
    else:
        rereads = max(1.0, math.ceil(sq / rows) / slots) * (_causal_share(sq, skv) if causal else 1.0)
        hbm = 2.0 * b * sq * h * d * e + kv_unique * max(rereads, 1.0)
    hbm *= work
    if causal and fa2 and work <= 1.0 and len(in_order) > 1:
        # FlashAttention-2's forward launches grid (q-block, batch, head): the block scheduler hands
        # out the q-blocks of each head in ascending order, the shortest causal rows first (its
        # backward walks key blocks, longest first, which the longest-first schedule below covers)
        sched = dispatch(in_order, lengths_blocks[0][1], slots)
    else:
        sched = schedule(list(merged.items()), slots)
    if persistent:   # one set-up per SM, paid once before its first tile
        sched += eff.attention_cta_overhead_s
    t_hbm = hbm / (bw * eff.attention_memory_fraction)
    # paged kernels stall on their dependent block loads; a dense cache streams with prefetch, its
    # L2 -> SM and HBM transfers fully overlapped
    body = overlap((sched, t_hbm), eff.attention_overlap if paged else math.inf)
    compute = sum(n * t_mma * c for n, c in lengths_blocks) / slots
    if s.get("kv_write", 0.0):   # serving engines first copy the new K/V into the paged cache
        body += eff.launch_s + 2.0 * b * sq * kvh * kv_tok / (bw * eff.elementwise_memory_fraction)
    if decode and split_kernel and fa2 and b > 1 and kvh > 1:
        # the GQA swap views q as (batch x group, kv_heads, head_dim): with more than one sequence
        # and more than one KV head that view is strided, so q is copied in and O copied back
        # (flash_api.cpp mha_varlen_fwd: reshape after transpose) -- two more small kernels;
        # mha_fwd_kvcache (kv_append) hands the kernel q's strided view and allocates O with the
        # same strides (empty_like), so its transpose back is a view: no copies
        copies = 0.0 if s.get("kv_append", 0.0) else 2.0
        body += copies * (eff.launch_s + 2.0 * b * h * d * e / (bw * eff.elementwise_memory_fraction))
    if splits > 1:   # combine kernel: read FP32 partial outputs and log-sum-exps, write O
        part = b * h * sq * splits * (d + 1) * 4.0 + b * h * sq * d * e
        body += eff.launch_s + eff.attention_cta_overhead_s + part / (bw * eff.attention_memory_fraction)
    body += eff.attention_overhead_s
    return body, compute, t_hbm


_REF_HEAD_DIM = 128.0     # the head_dim the attention fractions describe (Llama-class models)
_DENSE_DECODE_CTAS_PER_SM = 2   # PyTorch SDPA's FlashAttention-2 decode kernels (attention_time_s)


def scan_chain_s(op: Op, hw: DeviceSpec) -> float:
    """The sequential part of a chunked delta-rule scan: its state kernel runs one CTA per sequence,
    value head and ``scan_value_block`` of value columns, each walking the sequence's chunks in
    order (``steps``), in waves over the SMs, at ``scan_step_latency`` per chunk; the scan's other
    kernels, parallel over chunks, are the roofline. (Yang et al. 2024, arXiv 2406.06484 §3.2 and
    flash-linear-attention's chunk_gated_delta_rule_fwd_h.)"""
    s, eff = op.shape or {}, hw.efficiency
    steps = s.get("steps", 0.0)
    if not steps or eff.scan_step_latency_s <= 0:
        return 0.0
    ctas = s["seqs"] * s["heads"] * math.ceil(s["vdim"] / max(1, eff.scan_value_block))
    return math.ceil(ctas / max(hw.compute_units, 1)) * steps * eff.scan_step_latency_s


def _causal_share(sq: float, skv: float) -> float:
    """Share of the sq x skv score matrix a causal kernel computes (the queries are the last sq)."""
    sq = min(sq, skv)
    return (sq * (skv - sq) + sq * (sq + 1) / 2) / (sq * skv)


def op_cost(op: Op, hw: DeviceSpec, comm_time=None) -> OpCost:
    """Cost of ``op`` on ``hw``. ``comm_time(op) -> seconds`` prices collectives (cost/comm.py)."""
    eff = hw.efficiency
    if op.kind in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
        t = comm_time(op) if comm_time is not None else 0.0
        return OpCost(t, Bound.COMMUNICATION, 0.0, 0.0, op.bytes * _link_energy(hw))
    if op.kind is OpKind.GEMM and op.shape:
        s = op.shape
        body, compute, memory = gemm_time_s(s["m"], s["n"], s["k"], s.get("batch", 1), op.dtype, hw,
                                            *l2_hits(s, op.dtype.bytes, hw))
        return _finish(op, hw, body, compute, memory)
    if op.kind is OpKind.ATTENTION and op.shape and op.shape.get("flash", 1.0) and "seq_q" in op.shape:
        body, compute, memory = attention_time_s(op, hw)
        return _finish(op, hw, body, compute, memory)
    if op.kind is OpKind.ATTENTION:   # unfused attention: scores round-trip HBM
        compute = op.flops / (hw.peak(op.dtype) * eff.attention_compute_fraction)
        memory = memory_time_s(op.bytes, hw, eff.attention_memory_fraction)
    elif op.kind is OpKind.SCAN:
        compute = op.flops / (hw.peak(op.dtype) * eff.attention_compute_fraction)
        memory = memory_time_s(op.bytes, hw, eff.attention_memory_fraction)
        return _finish(op, hw, max(compute, memory) + scan_chain_s(op, hw), compute, memory)
    elif is_dense_backward(op, hw):          # PyTorch's sort-based embedding backward (cost/embedding.py)
        s = op.shape
        body, kernels = embedding_backward_time_s(s["tokens"], s["vocab"], s["hidden"], op.dtype.bytes, hw)
        return _finish(op, hw, body, 0.0, body, kernels)
    elif (row_op := row_op_of(op, hw)) is not None:     # PyTorch's softmax / norm kernels (cost/rowwise.py)
        s = op.shape
        body, kernels = rowwise_time_s(row_op, s["row"], s["elements"], op.dtype.bytes, hw)
        return _finish(op, hw, body, 0.0, body, kernels)
    elif op.kind in (OpKind.ELEMENTWISE, OpKind.NORM, OpKind.SOFTMAX, OpKind.EMBEDDING, OpKind.LOSS,
                     OpKind.OPTIMIZER, OpKind.COPY):
        compute = op.flops / (hw.peak(DType.FP32) * eff.compute_fraction) if op.flops else 0.0
        memory = memory_time_s(op.bytes, hw, eff.elementwise_memory_fraction)
        if op.shape and op.shape.get("load_bytes"):     # scalar loads: latency-bound (cost/latency.py)
            memory = max(memory, load_latency_time_s(op, hw, op.shape["load_bytes"]))
    else:
        compute = op.flops / (hw.peak(op.dtype) * eff.compute_fraction) if op.flops else 0.0
        memory = memory_time_s(op.bytes, hw, eff.memory_fraction)
    return _finish(op, hw, max(compute, memory), compute, memory)


def _finish(op: Op, hw: DeviceSpec, body: float, compute: float, memory: float,
            launches: float | None = None) -> OpCost:
    eff = hw.efficiency
    if launches is None:
        launches = op.shape.get("launches", 1.0) if op.shape else 1.0
    time = body + eff.launch_s * launches
    bound = Bound.COMPUTE if compute >= memory else Bound.MEMORY
    if eff.launch_s > body:
        bound = Bound.LATENCY
    flop_j = op.flops * hw.flop_energy(op.dtype)
    energy = flop_j + op.bytes * hw.memory_byte_energy_j
    return OpCost(time, bound, compute, memory, energy, flop_j)


def _link_energy(hw: DeviceSpec) -> float:
    return max((link.energy_j_per_byte for link in hw.links), default=0.0)
