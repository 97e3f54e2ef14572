"""The workload graph: ops with FLOPs and bytes per data class, in execution order.

An :class:`Op` is what one device executes: a GEMM, an attention kernel, an elementwise pass, a
collective. Bytes are split by data class (weights, input activations, outputs) so arithmetic
intensity can weigh them separately (cost/intensity.py). ``saved_bytes`` is what the op's forward
keeps for backward (the memory model and simulator use it); ``shape`` holds the kind-specific
dimensions the efficiency model needs (GEMM m, n, k, batch; attention batch, heads, lengths;
collective bytes and ranks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Mapping

from ..spec.model import DType


class OpKind(Enum):
    GEMM = "gemm"
    ATTENTION = "attention"
    SCAN = "scan"                  # chunked scan of a recurrent mixer (linear attention, state space)
    ELEMENTWISE = "elementwise"
    NORM = "norm"
    SOFTMAX = "softmax"
    EMBEDDING = "embedding"
    LOSS = "loss"
    OPTIMIZER = "optimizer"
    CONV = "conv"
    COPY = "copy"
    COLLECTIVE = "collective"
    SEND_RECV = "send_recv"
    OTHER = "other"


class Phase(Enum):
    FWD = "fwd"
    BWD = "bwd"
    RECOMPUTE = "recompute"
    OPTIMIZER = "optimizer"


class Collective(Enum):
    ALL_REDUCE = "all_reduce"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_TO_ALL = "all_to_all"
    SEND_RECV = "send_recv"


class LinkScope(Enum):
    """Which links a collective crosses: inside a node (NVLink) or across nodes (network)."""

    INTRA = "intra"
    INTER = "inter"


@dataclass(frozen=True)
class Op:
    """One op on one device. FLOPs and bytes are for one execution; ``count`` repeats it."""

    name: str
    kind: OpKind
    phase: Phase
    layer: int                      # -1 for ops outside the transformer layers (embedding, head, optimizer)
    flops: float                    # executed floating-point operations (a multiply-add is 2)
    dtype: DType
    weight_bytes: float = 0.0       # parameters read
    input_bytes: float = 0.0        # activations read
    output_bytes: float = 0.0       # activations written
    saved_bytes: float = 0.0        # kept from forward for backward
    model_flops: float | None = None  # FLOPs counted by the MFU convention (None: same as flops)
    shape: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    count: int = 1

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.input_bytes + self.output_bytes

    @property
    def mflops(self) -> float:
        return self.flops if self.model_flops is None else self.model_flops


def shape(**values: float) -> Mapping[str, float]:
    """A read-only shape mapping for :class:`Op`."""
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class Graph:
    """Ops in execution order for one micro-batch on one device (one tensor-parallel rank).

    ``layers`` is the number of transformer layers in the model; ops with ``layer >= 0`` belong
    to them; the pipeline stage of a layer is decided by the cost model or the simulator.
    """

    name: str
    ops: tuple[Op, ...]
    layers: int
    tokens: int                     # tokens processed per micro-batch (train/prefill) or per step (decode)

    def by_phase(self, phase: Phase) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.phase is phase)
