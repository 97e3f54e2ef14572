"""Time of one op on one device: a roofline with an efficiency model read from the spec.

``time = max(compute time, memory time) + launch`` where
- compute time of a GEMM counts whole waves of output tiles over the SMs (tile and wave
  quantisation: a wave is ``compute_units x gemm_tiles_per_sm`` tiles of ``gemm_tile_m x
  gemm_tile_n``; each SM runs at ``peak / compute_units x compute_fraction``);
- memory time divides the bytes moved by the achievable bandwidth ``hbm x memory_fraction``,
  derated for small transfers by ``bytes / (bytes + bandwidth_ramp_bytes)`` (a kernel that moves
  little data cannot fill the memory pipeline);
- attention uses FlashAttention's fused kernel (Dao 2023): compute on the tensor cores at
  ``attention_compute_fraction``, KV reads at ``attention_memory_fraction``;
- collectives use the alpha-beta model of comm.py.
Every constant lives in the spec's ``efficiency:`` block (spec/model.py: Efficiency).
Sources: Williams, Waterman, Patterson, "Roofline", CACM 2009; NVIDIA "Matrix Multiplication
Background User's Guide" (tile and wave quantisation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from ..spec.model import DeviceSpec, DType
from ..workload.graph import Op, OpKind


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


def _ramp(nbytes: float, ramp_bytes: float) -> float:
    return nbytes / (nbytes + ramp_bytes) if nbytes > 0 else 1.0


def memory_time_s(nbytes: float, hw: DeviceSpec, fraction: float) -> float:
    """Time to move ``nbytes`` through main memory at ``fraction`` of its bandwidth, ramp included."""
    if nbytes <= 0:
        return 0.0
    eff = hw.efficiency
    bw = hw.main_memory.bandwidth_bytes_per_s * fraction * _ramp(nbytes, eff.bandwidth_ramp_bytes)
    return nbytes / bw


def gemm_compute_s(m: float, n: float, k: float, batch: float, dtype: DType, hw: DeviceSpec) -> float:
    """Whole waves of output tiles; small m falls back to a smaller tile (>= gemm_min_tile_m)."""
    eff = hw.efficiency
    peak = hw.peak(dtype) * eff.compute_fraction
    if m <= 0 or n <= 0 or k <= 0:
        return 0.0
    tile_m = eff.gemm_tile_m
    if m < tile_m:
        tile_m = max(eff.gemm_min_tile_m, 2 ** math.ceil(math.log2(max(m, 1))))
        tile_m = min(tile_m, eff.gemm_tile_m)
    tile_n = eff.gemm_tile_n
    tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n) * batch
    units = max(hw.compute_units, 1)
    slots = units * eff.gemm_tiles_per_sm
    waves = math.ceil(tiles / slots)
    # a partial last wave still takes a whole wave's time; tiles beyond the SM count run in parallel
    flops_per_wave = 2.0 * tile_m * tile_n * k * slots
    return waves * flops_per_wave / peak


def op_cost(op: Op, hw: DeviceSpec, comm_time=None) -> OpCost:
    """Cost of ``op`` on ``hw``. ``comm_time(op) -> seconds`` prices collectives (cost/comm.py)."""
    eff = hw.efficiency
    if op.kind in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
        t = comm_time(op) if comm_time is not None else 0.0
        return OpCost(t, Bound.COMMUNICATION, 0.0, 0.0, op.bytes * _link_energy(hw))
    if op.kind is OpKind.GEMM and op.shape:
        s = op.shape
        compute = gemm_compute_s(s["m"], s["n"], s["k"], s.get("batch", 1), op.dtype, hw)
        compute = max(compute, op.flops / (hw.peak(op.dtype) * eff.compute_fraction))
        memory = memory_time_s(op.bytes * eff.l2_reuse, hw, eff.memory_fraction)
    elif op.kind is OpKind.ATTENTION:
        compute = op.flops / (hw.peak(op.dtype) * eff.attention_compute_fraction)
        memory = memory_time_s(op.bytes, hw, eff.attention_memory_fraction)
    elif op.kind in (OpKind.ELEMENTWISE, OpKind.NORM, OpKind.SOFTMAX, OpKind.EMBEDDING, OpKind.LOSS,
                     OpKind.OPTIMIZER, OpKind.COPY):
        compute = op.flops / (hw.peak(DType.FP32) * eff.compute_fraction) if op.flops else 0.0
        memory = memory_time_s(op.bytes, hw, eff.elementwise_memory_fraction)
    else:
        compute = op.flops / (hw.peak(op.dtype) * eff.compute_fraction) if op.flops else 0.0
        memory = memory_time_s(op.bytes, hw, eff.memory_fraction)
    body = max(compute, memory)
    time = body + eff.launch_s
    bound = Bound.COMPUTE if compute >= memory else Bound.MEMORY
    if eff.launch_s > body:
        bound = Bound.LATENCY
    energy = op.flops * hw.flop_energy(op.dtype) + op.bytes * hw.main_memory.energy_j_per_byte
    return OpCost(time, bound, compute, memory, energy)


def _link_energy(hw: DeviceSpec) -> float:
    return max((link.energy_j_per_byte for link in hw.links), default=0.0)
