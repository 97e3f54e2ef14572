"""FLOPs and bytes of profiled ops, computed from their recorded shapes.

The profiler does not write FLOPs into the JSON (ecosystem.md §2.1: ``with_flops`` numbers live
only in memory), so every count here comes from ``Input Dims`` / ``Input type`` / ``Concrete
Inputs``. Conventions follow simhw/workload/transformer.py: a multiply-add is 2 FLOPs (GEMM
``2·m·n·k``, Korthikanti et al. 2022 App. A); attention executes ``4·b·h·s_q·s_kv·d`` (QK^T and
AV), halved when causal with equal lengths (FlashAttention skips masked tiles), and its fused
backward executes 2.5x forward (Dao 2023 §3.1); a convolution is ``2·N·K_out·P_out·(C/g)·R·S``;
elementwise and memory-bound ops move every input once and write their output once.

Each op name maps to a :class:`Rule`: ``mode`` says how the op is treated in the call tree
(see cost.py/link.py): TERMINAL ops are costed and their children ignored; COMPOSITE ops are
costed only when none of their children is; SELF_FIRST ops are costed from their own arguments
when those suffice, else through their children. ``NO_WORK`` marks views and allocations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping

from ..spec.model import DType
from ..workload.graph import OpKind

TERMINAL, COMPOSITE, SELF_FIRST = "terminal", "composite", "self_first"
NO_WORK = "no_work"

_ELSIZE = {"float": 4, "double": 8, "half": 2, "bfloat16": 2, "long int": 8, "long": 8, "int64_t": 8,
           "long long": 8, "int": 4, "int32_t": 4, "unsigned int": 4, "short": 2, "short int": 2,
           "unsigned short": 2, "bool": 1, "unsigned char": 1, "signed char": 1, "char": 1, "uint8_t": 1,
           "int8_t": 1, "complex<float>": 8, "complex<double>": 16, "complex<half>": 4, "qint8": 1,
           "quint8": 1, "qint32": 4, "quint4x2": 1}
_FLOAT = {"float": DType.FP32, "double": DType.FP64, "half": DType.FP16, "bfloat16": DType.BF16}
_NOT_TENSOR = {"", "Scalar", "ScalarList", "TensorList", "GenericList", "Device", "Layout", "None",
               "int[]", "Generator", "Storage"}
# c10::ScalarType codes as they appear in Concrete Inputs (dtype= arguments)
_SCALAR_TYPE = {0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 2, 6: 4, 7: 8, 8: 4, 9: 8, 10: 16, 11: 1, 15: 2,
                23: 1, 24: 1, 25: 1, 26: 1}


@lru_cache(maxsize=None)
def _norm_type(t: str) -> str:
    t = str(t).strip()
    if t.startswith("c10::"):
        t = t[5:]
    return t.lower()


@lru_cache(maxsize=None)
def elsize(t: str) -> float:
    """Bytes per element of a profiler ``Input type`` string (tolerant: old and new spellings)."""
    k = _norm_type(t)
    size = _ELSIZE.get(k)
    if size is None:
        size = 1 if k.startswith("float8") or k.startswith("float4") else 4
    return size


@lru_cache(maxsize=None)
def dtype_of(t: str) -> DType | None:
    k = _norm_type(t)
    if k in _FLOAT:
        return _FLOAT[k]
    if k.startswith("float8"):
        return DType.FP8
    return None


def numel(shape) -> int:
    return math.prod(shape) if shape else 1


@dataclass(frozen=True)
class Est:
    """What one op execution does: kind, FLOPs, bytes by class, dtype and the shape keys of op_cost."""

    kind: OpKind
    flops: float
    dtype: DType
    weight_bytes: float = 0.0
    input_bytes: float = 0.0
    output_bytes: float = 0.0
    shape: Mapping[str, float] | None = None
    model_flops: float | None = None


class Args:
    """Typed view of one op's recorded arguments."""

    __slots__ = ("dims", "types", "concrete", "extra", "world")

    def __init__(self, dims, types, concrete, extra=None, world: int = 1):
        self.dims, self.types, self.concrete, self.extra, self.world = dims or (), types or (), \
            concrete or (), extra, world

    def is_tensor(self, i: int) -> bool:
        if i >= len(self.dims):
            return False
        d = self.dims[i]
        if i < len(self.types):
            return self.types[i] not in _NOT_TENSOR and (not d or isinstance(d[0], int))
        return bool(d) and isinstance(d[0], int)            # old traces: no Input type

    def shape(self, i: int):
        return tuple(self.dims[i]) if self.is_tensor(i) else None

    def esize(self, i: int) -> float:
        return elsize(self.types[i]) if i < len(self.types) else 4

    def nbytes(self, i: int) -> float:
        return numel(self.dims[i]) * self.esize(i) if self.is_tensor(i) else 0.0

    def tensors(self) -> list[int]:
        return [i for i in range(len(self.dims)) if self.is_tensor(i)]

    def lists(self) -> list[int]:
        """Indices of TensorList arguments that recorded their shapes."""
        return [i for i in range(len(self.dims)) if i < len(self.types) and self.types[i] == "TensorList"
                and self.dims[i]]

    def list_bytes(self, i: int) -> float:
        return sum(numel(s) for s in self.dims[i]) * self._list_esize(i)

    def _list_esize(self, i: int) -> float:
        for t in self.types:  # TensorList elements carry no type; take the first real tensor's
            if t not in _NOT_TENSOR:
                return elsize(t)
        return 4

    def dtype(self) -> DType:
        for i in range(len(self.types)):
            d = dtype_of(self.types[i])
            if d is not None and self.is_tensor(i):
                return d
        return DType.FP32

    def text(self, i: int) -> str:
        return str(self.concrete[i]) if i < len(self.concrete) else ""

    def ints(self, i: int) -> list[int] | None:
        """A Concrete Inputs entry as a list of ints ("[1, 1]" -> [1, 1], "2" -> [2]); None if absent."""
        s = self.text(i).strip().strip("[]()")
        if not s:
            return [] if self.text(i).strip().startswith("[") else None
        try:
            return [int(float(x)) for x in s.split(",") if x.strip()]
        except ValueError:
            return None

    def flag(self, i: int) -> bool:
        return self.text(i).strip().lower() in ("true", "1")


# ---------------------------------------------------------------------------- GEMM family

def _gemm(m, n, k, batch, dt, a_bytes, b_bytes, c_bytes, extra_flops=0.0) -> Est:
    return Est(OpKind.GEMM, 2.0 * batch * m * n * k + extra_flops, dt, weight_bytes=b_bytes, input_bytes=a_bytes,
               output_bytes=c_bytes, shape={"m": m, "n": n, "k": k, "batch": batch})


def _out_bytes(a: Args, elements: float, i: int = 0) -> float:
    return elements * (a.esize(i) if a.is_tensor(i) else 4)


def mm(a: Args, i=0, j=1, bias=None) -> Est | None:
    x, w = a.shape(i), a.shape(j)
    if not x or not w or len(x) != 2 or len(w) != 2:
        return None
    m, k, n = x[0], x[1], w[1]
    extra = m * n if bias is not None and a.is_tensor(bias) else 0.0
    return _gemm(m, n, k, 1, a.dtype(), a.nbytes(i), a.nbytes(j) + (a.nbytes(bias) if bias is not None else 0),
                 _out_bytes(a, m * n, i), extra)


def bmm(a: Args, i=0, j=1, bias=None) -> Est | None:
    x, w = a.shape(i), a.shape(j)
    if not x or not w or len(x) != 3 or len(w) != 3:
        return None
    b, m, k, n = x[0], x[1], x[2], w[2]
    extra = b * m * n if bias is not None and a.is_tensor(bias) else 0.0
    return _gemm(m, n, k, b, a.dtype(), a.nbytes(i), a.nbytes(j) + (a.nbytes(bias) if bias is not None else 0),
                 _out_bytes(a, b * m * n, i), extra)


def matmul(a: Args, i=0, j=1) -> Est | None:
    """torch.matmul with broadcasting; ``x @ W`` with a 2-D ``W`` folds the batch into m."""
    x, w = a.shape(i), a.shape(j)
    if x is None or w is None or not x or not w:
        return None
    if len(w) == 1:
        w = w + (1,)
    if len(x) == 1:
        x = (1,) + x
    k, n = x[-1], w[-1]
    if len(w) == 2:
        m, batch = numel(x[:-1]), 1
    else:
        m = x[-2]
        bx, bw = x[:-2], w[:-2]
        width = max(len(bx), len(bw))
        bx, bw = (1,) * (width - len(bx)) + bx, (1,) * (width - len(bw)) + bw
        batch = numel(tuple(max(p, q) for p, q in zip(bx, bw)))
    return _gemm(m, n, k, batch, a.dtype(), a.nbytes(i), a.nbytes(j), _out_bytes(a, batch * m * n, i))


def linear(a: Args) -> Est | None:
    """linear(x, W[n, k], bias[n]); TorchScript-fused traces list extra tensors first, so the weight is
    found from the end (a trailing 1-D bias matching its rows) and ``x`` is the tensor before it."""
    idx = [i for i in a.tensors() if a.dims[i]]
    if len(idx) < 2:
        return None
    last, prev = a.dims[idx[-1]], a.dims[idx[-2]]
    bias = len(idx) >= 3 and len(last) == 1 and len(prev) == 2 and prev[0] == last[0]
    w_at, x_at = (idx[-2], idx[-3]) if bias else (idx[-1], idx[-2])
    x, w = a.shape(x_at), a.shape(w_at)
    if len(w) != 2 or x[-1] != w[1]:
        return None
    m, k, n = numel(x[:-1]), x[-1], w[0]
    return _gemm(m, n, k, 1, a.dtype(), a.nbytes(x_at), a.nbytes(w_at) + (a.nbytes(idx[-1]) if bias else 0),
                 _out_bytes(a, m * n, x_at), m * n if bias else 0.0)


def mv(a: Args, i=0, j=1) -> Est | None:
    x, v = a.shape(i), a.shape(j)
    if not x or not v:
        return None
    m, k = (x[0], x[-1]) if len(x) == 2 else (1, x[0])
    return _gemm(m, 1, k, 1, a.dtype(), a.nbytes(j), a.nbytes(i), _out_bytes(a, m, i))


# ---------------------------------------------------------------------------- attention

def attention(q_at: int, layout: str, causal_at: int | tuple[int, ...] | None, backward: bool = False,
              flash: bool = True, mask_type: bool = False) -> Callable:
    """SDPA-family rule; ``layout`` "bhsd" (SDPA level) or "bshd" (_flash/_efficient kernels).
    ``causal_at``: the is_causal argument's position, or positions across torch versions (the
    first that holds a boolean is read); with ``mask_type`` the custom_mask_type int (1, 2: causal)."""
    where = (causal_at,) if isinstance(causal_at, int) else causal_at
    def rule(a: Args) -> Est | None:
        q, k, v = a.shape(q_at), a.shape(q_at + 1), a.shape(q_at + 2)
        if not q or not k or len(q) != 4 or len(k) != 4:
            return None
        if layout == "bhsd":
            b, h, sq, d = q
            hkv, skv = k[1], k[2]
        else:
            b, sq, h, d = q
            skv, hkv = k[1], k[2]
        dv = v[-1] if v else d
        if not where:
            causal = False
        elif mask_type:
            causal = (a.ints(where[0]) or [0])[0] in (1, 2)
        else:
            at = next((i for i in where if a.text(i).strip().lower() in ("true", "false")), where[0])
            causal = a.flag(at)
        full = 2.0 * b * h * sq * skv * (d + dv)
        executed = full * (0.5 if causal and sq == skv and flash else 1.0)
        e = a.esize(q_at)
        io_in = a.nbytes(q_at) + a.nbytes(q_at + 1) + a.nbytes(q_at + 2)
        out = b * h * sq * dv * e
        if backward:  # reads q, k, v, out, dout; writes dq, dk, dv
            executed, full = 2.5 * executed, 2.5 * full
            io_in, out = io_in + 2 * out, io_in
        return Est(OpKind.ATTENTION, executed, a.dtype(), input_bytes=io_in, output_bytes=out, model_flops=full,
                   shape={"batch": b, "heads": h, "kv_heads": hkv, "seq_q": sq, "seq_kv": skv, "head_dim": d,
                          "causal": float(causal), "flash": float(flash)})
    return rule


# ---------------------------------------------------------------------------- convolution

def conv(w_at=1, stride_at=3, pad_at=4, dil_at=5, groups_at=6, x_at=0, transposed_at=None) -> Callable:
    """Direct or implicit-GEMM convolution: FLOPs = 2·N·K·P_out·(C/g)·prod(kernel)."""
    def rule(a: Args) -> Est | None:
        x, w = a.shape(x_at), a.shape(w_at)
        if not x or not w or len(x) < 3 or len(w) != len(x):
            return None
        nd = len(x) - 2
        spatial = x[2:]
        kernel = w[2:]
        g = (a.ints(groups_at) or [1])[0] if groups_at is not None else 1
        g = max(g, 1)
        transposed = transposed_at is not None and a.flag(transposed_at)

        def per_dim(at, default):
            vals = a.ints(at) if at is not None else None
            if not vals:
                return [default] * nd
            return (vals * nd)[:nd] if len(vals) == 1 else vals[:nd]
        s, p, d = per_dim(stride_at, 1), per_dim(pad_at, 0), per_dim(dil_at, 1)
        same = pad_at is not None and a.text(pad_at).strip().strip("'\"") == "same"
        if same:
            out = [math.ceil(i / st) for i, st in zip(spatial, s)]
        else:
            out = [max(1, (i + 2 * pp - dd * (kk - 1) - 1) // st + 1)
                   for i, pp, dd, kk, st in zip(spatial, p, d, kernel, s)]
        n, c = x[0], x[1]
        if transposed:  # weight [C_in, K_out/g, ...]: every input position scatters a kernel
            k_out = w[1] * g
            flops = 2.0 * n * c * numel(spatial) * (k_out // g) * numel(kernel)
            out = [(i - 1) * st - 2 * pp + dd * (kk - 1) + 1 for i, pp, dd, kk, st in zip(spatial, p, d, kernel, s)]
        else:
            k_out = w[0]
            flops = 2.0 * n * k_out * numel(out) * (c // g) * numel(kernel)
        e = a.esize(x_at)
        return Est(OpKind.CONV, flops, a.dtype(), weight_bytes=a.nbytes(w_at), input_bytes=a.nbytes(x_at),
                   output_bytes=n * k_out * numel(out) * e,
                   shape={"m": n * numel(out), "n": k_out, "k": (c // g) * numel(kernel), "batch": 1})
    return rule


def conv_backward(a: Args) -> Est | None:
    """convolution_backward(grad_out, input, weight, bias_sizes, stride, padding, dilation, transposed,
    output_padding, groups, output_mask): input grad and weight grad each cost one forward."""
    go, x, w = a.shape(0), a.shape(1), a.shape(2)
    if not go or not x or not w:
        return None
    g = max((a.ints(9) or [1])[0], 1)
    one = 2.0 * go[0] * go[1] * numel(go[2:]) * (x[1] // g) * numel(w[2:])
    mask = [t.strip().lower() == "true" for t in a.text(10).strip("[]").split(",")] if a.text(10) else []
    passes = sum(mask[:2]) if len(mask) >= 2 else 2
    return Est(OpKind.CONV, one * passes, a.dtype(), weight_bytes=a.nbytes(2) * (1 + (passes > 1)),
               input_bytes=a.nbytes(0) + a.nbytes(1), output_bytes=a.nbytes(1) if passes else 0.0,
               shape={"m": go[0] * numel(go[2:]), "n": go[1], "k": (x[1] // g) * numel(w[2:]), "batch": 1})


@dataclass(frozen=True)
class Rule:
    mode: str
    fn: Callable[[Args], Est | None] | None


def rule_for(name: str):
    """The :class:`Rule` of an op name, ``NO_WORK``, or None (unknown)."""
    from .rules import lookup
    return lookup(name)
