"""Builders of the ops a workload graph is made of: GEMMs, elementwise and row-wise kernels, and the
codes collectives carry in their shapes (shared by workload/transformer.py and workload/mixers.py)."""
from __future__ import annotations

from dataclasses import replace

from ..spec.model import DType
from .graph import Collective, LinkScope, Op, OpKind, Phase, shape

COLL_CODE = {c: i for i, c in enumerate(Collective)}
COLLECTIVE_BY_CODE = {i: c for c, i in COLL_CODE.items()}
SCOPE_BY_CODE = {0: LinkScope.INTRA, 1: LinkScope.INTER}


def gemm(name, layer, phase, dtype, m_, k, n, *, batch=1, weight=True) -> Op:
    e = dtype.bytes
    return Op(name, OpKind.GEMM, phase, layer, 2.0 * batch * m_ * k * n, dtype,
              weight_bytes=k * n * e * batch if weight else 0.0,
              input_bytes=m_ * k * e * batch + (0.0 if weight else k * n * e * batch),
              output_bytes=m_ * n * e * batch, shape=shape(m=m_, n=n, k=k, batch=batch))


def elementwise(name, kind, layer, phase, dtype, elements, reads=1, writes=1, flops_per=1.0) -> Op:
    e = dtype.bytes
    return Op(name, kind, phase, layer, flops_per * elements, dtype, input_bytes=reads * elements * e,
              output_bytes=writes * elements * e, model_flops=0.0, shape=shape(elements=elements))


def norm(name: str, layer: int, phase: Phase, dtype: DType, tokens: float, width: int) -> Op:
    """A norm over rows of ``width`` elements (shape key row; the layer norms' rows are hidden wide)."""
    op = elementwise(name, OpKind.NORM, layer, phase, dtype, tokens * width, flops_per=5)
    return replace(op, shape=shape(elements=tokens * width, row=float(width)))
