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
- attention (cost/attention.py attention_time_s): FlashAttention-2/3 prefill and split-KV decode
  kernels, CTA by CTA;
- recurrent scans (linear attention, state space; chunked): ``max(FLOPs / (peak x
  attention_compute_fraction), bytes / (HBM x attention_memory_fraction))``: like FlashAttention
  they run a chunk's small matrix products on tensor cores out of shared memory;
- PyTorch's softmax and norm kernels with a known row width (shape ``row``, ``row_op``): the
  kernel the width dispatches to, its occupancy and its blocks' load chains (cost/rowwise.py);
- elementwise, other norms and others: ``max(FLOPs / peak, bytes / achievable bandwidth)``, the
  bandwidth derated for small transfers (bandwidth_ramp_bytes), plus the queued round trips of
  kernels that keep one scalar load in flight per thread (cost/latency.py);
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
from dataclasses import dataclass, replace
from enum import Enum

from ..spec.model import DeviceSpec, DType, Efficiency
from ..workload.graph import Op, OpKind, shape as op_shape
from .attention import attention_time_s
from .ctas import light_gemm, stream_k
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


def l2_hits(shape, e: float, hw: DeviceSpec, b_bytes: float | None = None) -> tuple[bool, bool]:
    """Whether a GEMM's A and B operands are read from L2 rather than main memory.

    A benchmark loop (or a model's step) that reads an operand again after touching ``reuse``
    other bytes finds it still in an LRU cache of capacity C when operand + reuse <= C (the
    operand's stack distance; Mattson et al. 1970, "Evaluation techniques for storage
    hierarchies"). Shape keys ``a_reuse`` / ``b_reuse`` give those bytes (absent or negative: never
    re-read, e.g. a harness that rotates input sets); C is the L2 capacity times
    ``l2_resident_fraction`` (0: residency not modelled)."""
    cap = hw.l2_resident_bytes
    if cap <= 0 or not shape:
        return False, False
    b = shape.get("batch", 1.0)
    sizes = (shape["m"] * shape["k"] * e * b, shape["k"] * shape["n"] * (b_bytes or e) * b)
    return tuple(shape.get(key, -1.0) >= 0 and size + shape[key] <= cap
                 for key, size in zip(("a_reuse", "b_reuse"), sizes))


def fresh_l2_bytes(op: Op, hw: DeviceSpec) -> float:
    """Bytes of ``op``'s inputs it reads from L2 because the kernel just before wrote them.

    Shape key ``fresh_bytes``: input bytes the previous kernel wrote (e.g. a residual add reading
    the down projection's output). L2 is write-back, so those lines are still there when they fit
    in its resident share (``l2_resident_fraction`` of the capacity; a stack distance of zero,
    as in l2_hits); otherwise they are read from main memory like the rest."""
    fresh = op.shape.get("fresh_bytes", 0.0) if op.shape else 0.0
    if fresh <= 0 or fresh > hw.l2_resident_bytes:
        return 0.0
    return min(fresh, op.input_bytes)


def gemm_time_s(m: float, n: float, k: float, batch: float, dtype: DType, hw: DeviceSpec,
                a_in_l2: bool = False, b_in_l2: bool = False, b_bytes: float | None = None,
                a_bytes: float | None = None, c_bytes: float | None = None) -> tuple[float, float, float]:
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
    only the last wave's stores add to the time; on sm90 only ping-pong kernels do, whose tiles
    are at most gemm_pingpong_max_tile_elems (one warp group's accumulator): cuBLAS's larger
    cooperative tiles (nvjet ``coopA`` / ``coopB``) store each tile after its main loop.
    Split-K partials are reduced by one more memory pass (a kernel of its own, one more launch, with
    gemm_split_k_kernel: cuBLASLt on Hopper). Where the spec has the library's small one-stage
    kernel (gemm_light_tile: cuBLAS sm80's 32 x 32 WMMA kernels, cost/ctas.py light_gemm), a 16-bit
    GEMM takes it when it is faster and cuBLAS would run it (m <= gemm_light_max_m, or at least
    gemm_light_min_macs multiply-adds). gemm_prologue is charged once per GEMM kernel. An
    operand already in L2 (``a_in_l2``,
    ``b_in_l2``: l2_hits) costs no main-memory reads; the k-tile pipeline keeps main memory's
    latency (pricing it at the L2's made aiconfigurator's small GEMMs too fast).
    ``b_bytes``: bytes per element of the k x n operand when it is stored narrower than ``dtype``
    (weight-only quantization: the kernel dequantizes the weight tiles it loads, as AWQ's and
    Marlin's do, and computes in ``dtype``; the dequantization itself is not priced). ``a_bytes``,
    ``c_bytes``: bytes per element of the m x k operand (block scales included) and of the output,
    when they differ from ``dtype``'s (FP8 / FP4 GEMMs with scaled operands and BF16 outputs:
    workload/precision.py).
    """
    if m <= 0 or n <= 0 or k <= 0 or batch <= 0:
        return 0.0, 0.0, 0.0
    eff = hw.efficiency
    e = dtype.bytes
    eb = e if b_bytes is None else b_bytes
    ea = e if a_bytes is None else a_bytes
    ec = e if c_bytes is None else c_bytes
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
    read_bytes = (m * k * ea * (not a_in_l2) + k * n * eb * (not b_in_l2)) * batch * eff.l2_reuse
    cluster = max(1, eff.gemm_cluster)
    p_overlap = eff.gemm_overlap
    inv_p = 1.0 / p_overlap
    blend_from = 0.05 if p_overlap <= 50 else math.inf    # lo / hi below which the p-norm is the max
    epilogue_overlap, cta_overhead = eff.gemm_epilogue_overlap, eff.gemm_cta_overhead_s
    pingpong_max = eff.gemm_pingpong_max_tile_elems
    best = None
    # mixed-precision kernels for narrow weights run 16-row MMA tiles at small batch (Marlin,
    # Frantar et al. 2024 §3: m16n8k16 instructions, batch 16 per tile row block)
    library = gemm_tiles(eff) if eb >= e else _tiles(eff.gemm_tile_m, eff.gemm_tile_n, min(16, eff.gemm_min_tile_m),
                                                      eff.gemm_min_tile_n, eff.gemm_max_tile_edge, eff.gemm_max_tile_elems)
    for tm, tn in library:
        tiles = math.ceil(m / tm) * math.ceil(n / tn) * batch
        um, un = min(tm, m), min(tn, n)                      # rows/cols of the tile that hold data
        overlapped = epilogue_overlap and (not pingpong_max or tm * tn <= pingpong_max)
        for split in _splits(k, eff.gemm_tile_k, eff.gemm_max_split_k):
            ctas = tiles * split
            kc = math.ceil(k / split / eff.gemm_tile_k) * eff.gemm_tile_k
            t_mma = 2.0 * tm * tn * kc / p_slot
            # a CTA keeps `stages` k-tiles in flight: one memory latency per `stages` k-tiles
            t_lat = math.ceil(kc / (eff.gemm_tile_k * eff.gemm_pipeline_stages)) * latency
            rd_cta = read_bytes / ctas
            wr_cta = um * un * (4 if split > 1 else ec)
            full, rest = divmod(ctas, slots)
            total = comp = mem = last_wr = 0.0
            for active, count in ((slots, full), (rest, 1 if rest else 0)):
                if not count:
                    continue
                # the SM takes both operand tiles through its port; with a multicast cluster the L2
                # reads the shared (n-side) tile once for the cluster's CTAs
                t_l2 = max((um * ea + un * eb) * kc / sm_port, (um * ea + un * eb / cluster) * kc * active / l2_bw)
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
                if overlapped:                  # a wave's stores run under the next wave's main loop
                    total += count * (max(main, t_wr) + cta_overhead)
                    last_wr = t_wr
                else:
                    total += count * (main + t_wr + cta_overhead)
                comp += count * max(t_mma, t_l2)
                mem += count * (t_rd + t_wr)
            total += last_wr                    # nothing runs under the last wave's stores
            if split > 1:   # reduce the FP32 partials: read split x m x n x 4, write m x n
                red = (split * m * n * 4 * batch) / bw_read + m * n * ec * batch / bw_write
                total += red + latency + eff.gemm_cta_overhead_s + (eff.launch_s if eff.gemm_split_k_kernel else 0.0)
                mem += red
            if best is None or total < best[0]:
                best = (total, comp, mem)
        if eff.gemm_stream_k:
            cand = stream_k(m, n, k, batch, tm, tn, e, slots, p_slot, sm_port, l2_bw, bw_read, bw_write,
                            latency, read_bytes, eff, eb, ea, ec)
            if cand is not None and cand[0] < best[0]:
                best = cand
    if e == 2 and eb >= e:          # the one-stage WMMA kernels are f16 / bf16 ones
        cand = light_gemm(m, n, k, batch, eff, units, peak / units, bw_read, bw_write, read_bytes, ec)
        if cand is not None and cand[0] < best[0]:
            best = cand
    return (best[0] + eff.gemm_prologue_s, best[1], best[2])


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


def _hiding_gemm_s(s, hw: DeviceSpec) -> float:
    """The time of the GEMM a collective runs under (its shape keys ``hide_*``)."""
    bits = {k: s[f"hide_{k}"] / 8 for k in ("in_bits", "weight_bits", "out_bits") if f"hide_{k}" in s}
    return gemm_time_s(s["hide_m"], s["hide_n"], s["hide_k"], s["hide_batch"], list(DType)[int(s["hide_dtype"])],
                       hw, a_bytes=bits.get("in_bits"), b_bytes=bits.get("weight_bits"),
                       c_bytes=bits.get("out_bits"))[0]


def op_cost(op: Op, hw: DeviceSpec, comm_time=None) -> OpCost:
    """Cost of ``op`` on ``hw``. ``comm_time(op) -> seconds`` prices collectives (cost/comm.py)."""
    eff = hw.efficiency
    if eff.fp8_any_layout and op.shape and op.shape.get("transpose_bytes"):   # no transposed FP8 copy needed
        op = replace(op, output_bytes=op.output_bytes - op.shape["transpose_bytes"],
                     shape=op_shape(**{k: v for k, v in op.shape.items() if k != "transpose_bytes"}))
    if op.kind in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
        t = comm_time(op) if comm_time is not None else 0.0
        if op.shape and "hide_m" in op.shape:     # overlapped with a GEMM (workload/overlap.py): what it leaves
            t = max(0.0, t - _hiding_gemm_s(op.shape, hw))
        return OpCost(t, Bound.COMMUNICATION, 0.0, 0.0, op.bytes * _link_energy(hw))
    if op.kind is OpKind.GEMM and op.shape:
        s = op.shape
        # weight-only quantized (workload/transformer.py) or scaled low-precision operands (workload/precision.py)
        wb = s.get("weight_bits", 0.0) / 8 or None
        ab, cb = s.get("in_bits", 0.0) / 8 or None, s.get("out_bits", 0.0) / 8 or None
        body, compute, memory = gemm_time_s(s["m"], s["n"], s["k"], s.get("batch", 1), op.dtype, hw,
                                            *l2_hits(s, ab or op.dtype.bytes, hw, wb), b_bytes=wb, a_bytes=ab,
                                            c_bytes=cb)
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
        fresh = fresh_l2_bytes(op, hw)
        memory = memory_time_s(op.bytes - fresh, hw, eff.elementwise_memory_fraction)
        if op.shape and op.shape.get("load_bytes"):     # scalar loads: their round trips queue (cost/latency.py)
            memory += load_latency_time_s(op, hw, op.shape["load_bytes"])
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
