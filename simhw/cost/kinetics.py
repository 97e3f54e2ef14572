"""Kinetics eFLOPs (Sadhukhan et al. 2025, arXiv 2506.05333): compute plus I x memory traffic.

``eflops = C_comp + I · C_mem``. For a device, I is its ridge point: peak FLOP/s divided by memory
bandwidth in elements per second (562.5 for B200: 2.25 PFLOP/s / (8 TB/s / 2 B); seed-targets §3d).
:func:`kinetics_dense_cost` reproduces the authors' code (``cost_model/utils.py``) exactly, including
that ``head_dim`` there is ``head_dim * num_hidden_layers``; costs are in FLOPs (the code's 1e-12
scale is left to the caller).
"""
from __future__ import annotations

from ..spec.model import DeviceSpec, DType


def intensity_elements(hw: DeviceSpec, dtype: DType = DType.BF16) -> float:
    """FLOPs per element of memory traffic at the ridge point: peak / (bandwidth / element size)."""
    return hw.peak(dtype) / (hw.main_memory.bandwidth_bytes_per_s / dtype.bytes)


def eflops(flops: float, memory_bytes: float, hw: DeviceSpec, dtype: DType = DType.BF16) -> float:
    """eFLOPs of a run that executes ``flops`` and moves ``memory_bytes``: flops + I · elements."""
    return flops + intensity_elements(hw, dtype) * memory_bytes / dtype.bytes


def kinetics_dense_cost(params: float, l_in: int, l_out: int, trials: int, heads: int, kv_heads: int,
                        head_dim: int, layers: int, i_flops: float = 562.5) -> tuple[float, float]:
    """(compute, memory) eFLOPs of best-of-N dense generation, as in the Kinetics code (§3b).

    compute = (2·P·Lout + 2·(2·Lin + Lout)·Lout·n_heads·D) · N
    memory  =  2·(2·Lin + Lout·N)·Lout·n_kv·D · I,  with D = head_dim · layers
    """
    d = head_dim * layers
    compute = (2 * params * l_out + 2 * (2 * l_in + l_out) * l_out * heads * d) * trials
    memory = 2 * (2 * l_in + l_out * trials) * l_out * kv_heads * d * i_flops
    return compute, memory
