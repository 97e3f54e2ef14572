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


def backward_ops(op: Op) -> list[Op]:
    """Backward of a forward op: a GEMM becomes its dgrad and wgrad GEMMs (2x FLOPs together);
    flash attention executes 2.5x its forward; other ops move twice the bytes."""
    name = op.name + ".bwd"
    if op.kind is OpKind.GEMM:
        s = op.shape
        m_, n, k, b = s["m"], s["n"], s["k"], s.get("batch", 1)
        e = op.dtype.bytes
        # dgrad: dX[m,k] = dY[m,n] · W^T[n,k]; wgrad: dW[k,n] = X^T[k,m] · dY[m,n]
        dgrad = Op(op.name + ".dgrad", op.kind, Phase.BWD, op.layer, op.flops, op.dtype,
                   weight_bytes=op.weight_bytes, input_bytes=b * m_ * n * e, output_bytes=b * m_ * k * e,
                   shape=shape(m=m_, n=k, k=n, batch=b), count=op.count)
        wgrad = Op(op.name + ".wgrad", op.kind, Phase.BWD, op.layer, op.flops, op.dtype,
                   input_bytes=b * (m_ * n + m_ * k) * e, output_bytes=op.weight_bytes or b * k * n * e,
                   shape=shape(m=k, n=n, k=m_, batch=b), count=op.count)
        return [dgrad, wgrad]
    if op.kind is OpKind.ATTENTION:
        flash = bool(op.shape.get("flash", 1.0))
        return [Op(name, op.kind, Phase.BWD, op.layer, op.flops * (2.5 if flash else 2.0), op.dtype,
                  model_flops=2 * op.mflops, input_bytes=op.input_bytes + 2 * op.output_bytes,
                  output_bytes=op.input_bytes, shape=op.shape, count=op.count)]
    if op.kind is OpKind.COLLECTIVE:
        return [Op(name, op.kind, Phase.BWD, op.layer, 0.0, op.dtype, input_bytes=op.input_bytes,
                   output_bytes=op.output_bytes, shape=op.shape, count=op.count)]
    return [Op(name, op.kind, Phase.BWD, op.layer, 2 * op.flops, op.dtype, weight_bytes=op.weight_bytes,
               input_bytes=op.input_bytes + op.output_bytes, output_bytes=op.input_bytes,
               model_flops=2 * op.mflops, shape=op.shape, count=op.count)]
