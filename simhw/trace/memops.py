"""Cost rules of memory-bound ops and collectives (see ops.py for the conventions).

Elementwise ops read every tensor input once and write their broadcast output; reductions write
the reduced shape; copies read the source and write the destination; foreach/fused optimizer ops
read every TensorList and write the updated ones; collectives carry the full buffer in bytes with
the comm.py convention (Thakur et al. 2005; NCCL bus bandwidth).
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Callable

from ..cost.rowwise import ROW_OP_CODES, RowOp
from ..spec.model import DType
from ..workload.graph import Collective, OpKind
from .ops import _SCALAR_TYPE, Args, Est, dtype_of, elsize, numel


# ---------------------------------------------------------------------------- memory-bound ops

def _broadcast(shapes) -> tuple:
    width = max((len(s) for s in shapes), default=0)
    out = [1] * width
    for s in shapes:
        for i, v in enumerate((1,) * (width - len(s)) + tuple(s)):
            out[i] = max(out[i], v)
    return tuple(out)


def pointwise(kind: OpKind = OpKind.ELEMENTWISE, flops_per: float = 1.0, out_elsize: float | None = None,
              outputs: int = 1) -> Callable:
    """Reads every tensor input once, writes the broadcast output (in-place ops write input 0)."""
    def rule(a: Args) -> Est | None:
        idx = a.tensors()
        if not idx:
            return None
        shapes = [a.shape(i) for i in idx]
        elements = numel(_broadcast(shapes))
        e_out = out_elsize if out_elsize is not None else a.esize(idx[0])
        return Est(kind, flops_per * elements, a.dtype(), input_bytes=sum(a.nbytes(i) for i in idx),
                   output_bytes=outputs * elements * e_out, shape={"elements": elements})
    return rule


def _row_keys(est: Est, row: float, op: RowOp) -> Est:
    """``est`` with the row width and the op's code (cost/rowwise.py prices PyTorch's row kernels)."""
    return replace(est, shape={**(est.shape or {}), "row": float(row), "row_op": float(ROW_OP_CODES[op])})


def _norm_row(a: Args, shape_at: int, x_at: int) -> int:
    """Elements per normalised row: the product of normalized_shape (Concrete Inputs) or the input's last dim."""
    dims = a.ints(shape_at)
    if dims:
        return math.prod(dims)
    x = a.shape(x_at)
    return x[-1] if x else 1


def row_norm(op: RowOp) -> Callable:
    """native_layer_norm / _fused_rms_norm: one pass over the input (pointwise), priced by the row
    kernel (cost/rowwise.py) from the width normalized_shape gives."""
    base = pointwise(OpKind.NORM, 5.0)

    def rule(a: Args) -> Est | None:
        est = base(a)
        return None if est is None else _row_keys(est, _norm_row(a, 1, 0), op)
    return rule


def row_norm_backward(op: RowOp) -> Callable:
    """native_layer_norm_backward / _fused_rms_norm_backward (grad_out, input, normalized_shape, ...):
    norm_backward's bytes, priced by the row kernels (grad-input, then gamma/beta)."""
    def rule(a: Args) -> Est | None:
        est = norm_backward(a)
        return None if est is None else _row_keys(est, _norm_row(a, 2, 1), op)
    return rule


def norm_backward(a: Args) -> Est | None:
    """A norm's backward: the elementwise pass for the input's gradient reads every input and
    writes it, and the weight/bias (or batch-statistics) gradients need a second, reducing pass
    over the output gradient and the input (PyTorch's layer_norm backward launches
    GammaBetaBackward after the grad-input kernel; batch and group norm reduce first)."""
    est = pointwise(OpKind.NORM, 8.0)(a)
    idx = a.tensors()
    if est is None or len(idx) < 2:
        return est
    return _read_again(est, a.nbytes(idx[0]) + a.nbytes(idx[1]))


def _read_again(est: Est, nbytes: float) -> Est:
    """``est`` with ``nbytes`` more read: a kernel's extra pass over tensors it already read."""
    return replace(est, input_bytes=est.input_bytes + nbytes)


# PyTorch's SoftMax.cu: rows of up to 1024 elements run a persistent warp kernel and rows that fit
# a block's shared memory (48 KB, sharedMemPerBlock) the shared-memory kernels, each reading its
# input once; longer rows run cunn_SoftMaxForward, which reads the row three times (max, sum of
# exponentials, output), and cunn_SoftMaxBackward, which reads the gradient (and, for softmax, the
# output) twice (the row's sum, then the result)
_SOFTMAX_PERSISTENT = 1024
_SOFTMAX_SMEM_BYTES = 48 * 1024
_ROW_SOFTMAX = {(False, False): RowOp.SOFTMAX, (False, True): RowOp.LOG_SOFTMAX,
                (True, False): RowOp.SOFTMAX_BACKWARD, (True, True): RowOp.LOG_SOFTMAX_BACKWARD}


def softmax(flops_per: float, backward: bool = False, log: bool = True) -> Callable:
    """_softmax / _log_softmax and their backward: one pass over short rows, the long-row kernels'
    extra passes over the rest (see above); the softmax dim is the Concrete Inputs' integer after
    the tensors (default: the last dim)."""
    base = pointwise(OpKind.SOFTMAX, flops_per)

    def rule(a: Args) -> Est | None:
        est = base(a)
        idx = a.tensors()
        if est is None or not idx:
            return est
        x = a.shape(idx[0])
        dims = a.ints(idx[-1] + 1) or [-1]
        row = x[dims[0] % len(x)] if x else 1
        if x and dims[0] % len(x) == len(x) - 1:     # the last dim: PyTorch's row kernels (cost/rowwise.py)
            est = _row_keys(est, row, _ROW_SOFTMAX[backward, log])
        if row <= _SOFTMAX_PERSISTENT or row * a.esize(idx[0]) <= _SOFTMAX_SMEM_BYTES:
            return est
        if backward:   # the gradient again (and the output, for softmax)
            return _read_again(est, a.nbytes(idx[0]) + (0.0 if log or len(idx) < 2 else a.nbytes(idx[1])))
        return _read_again(est, 2.0 * a.nbytes(idx[0]))      # the input twice more
    return rule


def reduction(flops_per: float = 1.0) -> Callable:
    """sum/mean/amax...: reads the input, writes the reduced output (dims from Concrete Inputs)."""
    def rule(a: Args) -> Est | None:
        x = a.shape(0)
        if x is None:
            return None
        elements = numel(x)
        dims = next((v for v in (a.ints(i) for i in range(1, 3)) if v), None)
        if dims:
            kept = [n for i, n in enumerate(x) if i not in {d % max(len(x), 1) for d in dims}]
            out = numel(kept)
        else:
            out = 1
        return Est(OpKind.ELEMENTWISE, flops_per * elements, a.dtype(), input_bytes=a.nbytes(0),
                   output_bytes=out * a.esize(0), shape={"elements": elements})
    return rule


def scan(a: Args) -> Est | None:
    x = a.shape(0)
    if x is None:
        return None
    return Est(OpKind.ELEMENTWISE, numel(x), a.dtype(), input_bytes=a.nbytes(0), output_bytes=a.nbytes(0),
               shape={"elements": numel(x)})


def write_only(kind: OpKind = OpKind.ELEMENTWISE) -> Callable:
    """fill_/zero_/uniform_...: writes input 0 (or a size from Concrete Inputs for factories)."""
    def rule(a: Args) -> Est | None:
        x = a.shape(0)
        if x is not None:
            elements, nbytes = numel(x), a.nbytes(0)
        else:
            size = a.ints(0)
            if size is None:
                return None
            code = (a.ints(1) or [6])[0]
            elements = numel(size)
            nbytes = elements * _SCALAR_TYPE.get(code, 4)
        return Est(kind, elements, a.dtype(), output_bytes=nbytes, shape={"elements": elements})
    return rule


def copy(a: Args) -> Est | None:
    """copy_(dst, src) or clone(src): read the source, write the destination."""
    idx = a.tensors()
    if not idx:
        return None
    if len(idx) >= 2:
        dst, src = idx[0], idx[1]
        elements = numel(a.shape(dst))
        return Est(OpKind.COPY, 0.0, a.dtype(), input_bytes=a.nbytes(src), output_bytes=a.nbytes(dst),
                   shape={"elements": elements})
    elements = numel(a.shape(idx[0]))
    return Est(OpKind.COPY, 0.0, a.dtype(), input_bytes=a.nbytes(idx[0]), output_bytes=a.nbytes(idx[0]),
               shape={"elements": elements})


def to_copy(a: Args) -> Est | None:
    """_to_copy(self, dtype, ...): read self, write it in the target dtype (ScalarType code)."""
    x = a.shape(0)
    if x is None:
        return None
    code = a.ints(1)
    e_out = _SCALAR_TYPE.get(code[0], a.esize(0)) if code else a.esize(0)
    return Est(OpKind.COPY, 0.0, a.dtype(), input_bytes=a.nbytes(0), output_bytes=numel(x) * e_out,
               shape={"elements": numel(x)})


def concat(a: Args) -> Est | None:
    lists = a.lists()
    if not lists:
        return pointwise(OpKind.COPY, 0.0)(a)
    nbytes = a.list_bytes(lists[0])
    elements = sum(numel(s) for s in a.dims[lists[0]])
    return Est(OpKind.COPY, 0.0, a.dtype(), input_bytes=nbytes, output_bytes=nbytes, shape={"elements": elements})


def gather_rows(kind: OpKind, idx_at: int = 1, table_at: int = 0) -> Callable:
    """embedding / index_select: each index reads one row of the table and writes it."""
    def rule(a: Args) -> Est | None:
        table, ids = a.shape(table_at), a.shape(idx_at)
        if not table or ids is None:
            return None
        row = numel(table[1:]) if len(table) > 1 else 1
        n = numel(ids)
        e = a.esize(table_at)
        return Est(kind, 0.0, a.dtype(), weight_bytes=n * row * e, input_bytes=a.nbytes(idx_at),
                   output_bytes=n * row * e, shape={"elements": n * row, "tokens": n})
    return rule


def embedding_backward(a: Args) -> Est | None:
    """embedding_dense_backward(grad, indices, num_weights, ...): zero the table, scatter-add rows;
    the token count, vocabulary and width let cost/embedding.py price PyTorch's sort-based kernels."""
    grad = a.shape(0)
    if not grad:
        return None
    vocab = (a.ints(2) or [0])[0]
    e = a.esize(0)
    tokens = numel(grad) / grad[-1] if grad[-1] else 0
    keys = {"elements": numel(grad)}
    if vocab > 0 and tokens > 0:
        keys.update(tokens=float(tokens), vocab=float(vocab), hidden=float(grad[-1]), dense_backward=1.0)
    return Est(OpKind.EMBEDDING, numel(grad), a.dtype(), input_bytes=a.nbytes(0) + a.nbytes(1),
               output_bytes=(vocab * grad[-1] + numel(grad)) * e, shape=keys)


def foreach(flops_per: float = 1.0, writes: int = 1) -> Callable:
    """_foreach_* and fused optimizers: read every TensorList, write ``writes`` of them."""
    def rule(a: Args) -> Est | None:
        lists = a.lists()
        if not lists:
            return None
        elements = sum(numel(s) for s in a.dims[lists[0]])
        reads = sum(a.list_bytes(i) for i in lists)
        out = sum(a.list_bytes(i) for i in lists[:writes]) if writes else a.list_bytes(lists[0])
        return Est(OpKind.OPTIMIZER, flops_per * elements, a.dtype(), input_bytes=reads, output_bytes=out,
                   shape={"elements": elements})
    return rule


# PyTorch's multi_tensor_apply (ATen/native/cuda/MultiTensorApply.cuh) gives each CTA one chunk of
# kChunkSize elements of one tensor; the ForeachFunctors.cuh functors are templated
# <T, depth, r_args_depth, res_arg_index>: lists touched, lists read, the list written
_MTA_CHUNK = 65536
_FUNCTOR = re.compile(r"(\w*Functor)<([\w:]+), (\d+), (\d+), (-?\d+)>")
_DEPTH = re.compile(r"TensorList\w*Metadata<(?:[\w:]+, )?(\d+)>")
_ELEMENT = re.compile(r"Functor<([\w:]+)[,>]")


def multi_tensor_apply(kernels: list[tuple[str, int]], flops_per: float = 1.0) -> Est | None:
    """A foreach or fused-optimizer op whose TensorList shapes the profiler did not record (it
    never does), sized from its ``multi_tensor_apply_kernel`` launches (name, grid blocks): one
    chunk of 65,536 elements per CTA, so the element count is an upper bound (a tensor's last chunk
    is partly filled). Per element it reads the functor's r_args_depth lists and writes one (fused
    Adam: reads param, grad, exp_avg, exp_avg_sq and writes the first three)."""
    elements = reads = writes = 0.0
    dtype = None
    for name, blocks in kernels:
        if "multi_tensor_apply" not in name or blocks <= 0:
            return None
        n = blocks * _MTA_CHUNK
        m = _FUNCTOR.search(name)
        if m:
            t, r, w = m.group(2), int(m.group(4)), 1
        else:
            d, e = _DEPTH.search(name), _ELEMENT.search(name)
            t = e.group(1) if e else "float"
            r = int(d.group(1)) if d else 1
            w = r - 1 if "Adam" in name else 1
        size = elsize(t)
        dtype = dtype or dtype_of(t)
        elements += n
        reads += n * r * size
        writes += n * w * size
    if not elements:
        return None
    return Est(OpKind.OPTIMIZER, flops_per * elements, dtype or DType.FP32, input_bytes=reads,
               output_bytes=writes, shape={"elements": elements})


# ---------------------------------------------------------------------------- collectives

def collective(kind: Collective, gather: bool = False) -> Callable:
    """NCCL collective: ``bytes`` is the full buffer (comm.py convention). For all-gather the
    recorded tensor is one rank's part, so the buffer is ``part x ranks``."""
    code = list(Collective).index(kind)

    def rule(a: Args) -> Est | None:
        ex = a.extra or {}
        ranks = int(ex.get("Group size") or 0)
        nbytes = 0.0
        if "In msg nelems" in ex:
            e = elsize(ex.get("dtype", "float"))
            nin, nout = float(ex.get("In msg nelems") or 0), float(ex.get("Out msg nelems") or 0)
            nbytes = max(nin, nout) * e
        else:
            idx = a.tensors()
            sizes = [a.nbytes(i) for i in idx] or [a.list_bytes(i) for i in a.lists()]
            if not sizes:
                return None
            if gather and len(sizes) >= 2 and min(sizes) > 0:
                ranks = ranks or round(max(sizes) / min(sizes))
                nbytes = max(sizes)
            elif gather:
                ranks = ranks or a.world
                nbytes = sizes[0] * ranks
            else:
                nbytes = max(sizes)
        ranks = ranks or a.world
        return Est(OpKind.COLLECTIVE, 0.0, a.dtype(), input_bytes=nbytes, output_bytes=nbytes,
                   shape={"collective": code, "bytes": nbytes, "ranks": ranks, "scope": 0})
    return rule


SECTOR_BYTES = 32   # a scattered load or store moves one 32-byte DRAM sector (CUDA C++ Best Practices Guide)


def nll_loss_threads(rows: int) -> int:
    """Threads of ATen's one-block nll_loss reduction kernels: 2^round(log2(N / 16)) clamped to
    32..1024 (LossNLL.cu, nll_loss_threads)."""
    return min(1024, max(32, 1 << max(0, round(math.log2(max(rows, 1) / 16)))))


def nll_loss(backward: bool) -> Callable:
    """nll_loss_forward(self[N, C], target[N], ...): one gathered value per row (a 32-byte sector
    each) and the targets; nll_loss_backward(grad, self, target, ...): writes the whole grad_input
    [N, C] (zeros, then one value per row) and reads the targets (ATen LossNLL.cu).

    The forward (reduced, 2-D) runs as ONE block of nll_loss_threads(N) threads, each looping over
    its rows with two dependent loads per row (the target, then the logit it indexes): it is
    bound by memory latency, not bandwidth (cost/latency.py: threads, rounds)."""
    at = 1 if backward else 0

    def rule(a: Args) -> Est | None:
        x, t = a.shape(at), a.shape(at + 1)
        if not x or t is None:
            return None
        rows = numel(t)
        if backward:
            return Est(OpKind.LOSS, rows, a.dtype(), input_bytes=a.nbytes(at + 1), output_bytes=a.nbytes(at),
                       shape={"elements": numel(x)})
        shape = {"elements": rows}
        if len(x) == 2 and a.text(3) != "0":   # reduced 2-D input (reduction='none', 0, runs a thread per row)
            shape.update(load_bytes=a.esize(at), threads=nll_loss_threads(rows), rounds=2.0)
        return Est(OpKind.LOSS, rows, a.dtype(), input_bytes=a.nbytes(at + 1) + rows * SECTOR_BYTES,
                   output_bytes=rows * a.esize(at), shape=shape)
    return rule
