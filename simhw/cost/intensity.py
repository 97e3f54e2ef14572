"""Arithmetic intensity: plain and data-type-aware.

Plain intensity is FLOPs per byte moved, every byte weighted equally (Williams et al., Roofline,
CACM 2009). Jha & Mittal (arXiv 2008.02565) argue that weighing the data types (weights, input
activations, outputs) separately predicts reuse and energy better; their exact weights are not
public in what we could read (../shared/seed-targets.md §5, UNVERIFIED), so simhw does not copy
them. simhw's data-type-aware intensity weights each class by the energy per byte of the memory
level it is served from: ``DI = FLOPs / Σ_t (e_t / e_hbm) · bytes_t`` where weights and inputs
come from HBM and an op's inputs and outputs come from L2 when the op's activations fit in L2.
Why: it keeps the unit (FLOP per HBM-equivalent byte), reduces to plain intensity when every
class comes from HBM, and ranks ops by energy per FLOP, which is the claim DI is built on.
"""
from __future__ import annotations

from ..spec.model import DeviceSpec
from ..workload.graph import Op


def plain_intensity(op: Op) -> float:
    """FLOP per byte moved (inf for ops that move nothing)."""
    return op.flops / op.bytes if op.bytes > 0 else float("inf")


def datatype_aware_intensity(op: Op, hw: DeviceSpec) -> float:
    """FLOP per HBM-equivalent byte, weights by the energy of the level each data class uses."""
    hbm = hw.main_memory
    l2 = hw.memory_level("l2")
    act = op.input_bytes + op.output_bytes
    w_act = 1.0
    if l2 is not None and hbm.energy_j_per_byte > 0 and act <= l2.capacity_bytes / 2:
        w_act = l2.energy_j_per_byte / hbm.energy_j_per_byte
    denom = op.weight_bytes + w_act * act
    return op.flops / denom if denom > 0 else float("inf")
