"""Cost rule of torch.compile's generated kernels (Inductor's Triton kernels) in a profiler trace.

torch.profiler records each Inductor kernel launch as a CPU op named after the kernel
(``triton_poi_fused_gelu_5``: ``poi`` pointwise, ``red`` looped reduction, ``per`` persistent
reduction; the rest lists the aten ops it fuses) with every pointer argument's shape, strides and
dtype and the element counts as scalars (torch 2.4+; simhw's compiled steps in
validate/data/h200-2026-11-26/train_e2e_*-compiled_trace.json.gz). Inductor's signature puts the
in/out and input buffers before the outputs, so the last tensor argument is taken as the output.

Bytes: each tensor argument once, counting only the dimensions it really spans (a stride-0,
broadcast dimension is not read again) and at most the kernel's iteration space (xnumel, times
r0_numel for a reduction: a larger tensor is gathered from, like the logits the NLL picks one of
per row); a looped reduction (``red``) reads its largest input a
second time when it writes a tensor of that size (a norm: one loop for the statistics, one to
normalise). A softmax backward whose arguments hold one tensor of the full size writes its
gradient over it (Inductor passes the logits as an in/out buffer when they die there), so that
tensor is read and written. GEMM templates (``triton_tem_..mm``, max-autotune) are costed as the
GEMM their argument shapes chain into (template_gemm); other templates carry no rule.

On simhw's two profiled compiled steps (H200; `simhw validate
validate/data/h200-2026-11-26/train_e2e_{12x768,32x2560}-fusedadam-compiled_trace.json.gz --hw
h200`; tests/repro/test_accuracy_own_runs.py; `python validate/fit_hopper.py` prints the sums)
the Inductor kernels sum to 0.86 and 0.96 of their measured time and scatter by about 15%
(median) one by one: casts run faster than simhw's
elementwise efficiency, and the online log-softmax forward over 32000-wide rows (one program of 16
warps per row) takes 2.9x its bytes' time, which neither its bytes nor its exponentials explain.
"""
from __future__ import annotations

import math
import re

from ..workload.functions import ELEMENTWISE_FLOPS
from ..workload.graph import OpKind
from .ops import Args, Est, dtype_of

INDUCTOR_PREFIXES = ("triton_poi_", "triton_red_", "triton_per_")
TEMPLATE_PREFIX = "triton_tem_"
_KINDS = ((("native_layer_norm", "rms_norm", "_fused_rms_norm"), OpKind.NORM), (("softmax",), OpKind.SOFTMAX),
          (("nll_loss",), OpKind.LOSS))
_TOKEN = re.compile(r"[a-z0-9]+(?:_backward)?")


def is_inductor_kernel(name: str) -> bool:
    return name.startswith(INDUCTOR_PREFIXES) or (name.startswith(TEMPLATE_PREFIX) and "mm" in name)


def _kind(name: str) -> OpKind:
    for words, kind in _KINDS:
        if any(w in name for w in words):
            return kind
    return OpKind.ELEMENTWISE


def _flops_per(name: str) -> float:
    """FLOPs per element: the costliest fused function the name lists (erf GELU: 80), else 1."""
    fused = name.split("_fused_", 1)[-1]
    return max([ELEMENTWISE_FLOPS[t] for t in _TOKEN.findall(fused) if t in ELEMENTWISE_FLOPS] + [1.0])


def _spanned(dims, strides) -> int:
    """Elements a tensor argument really holds: broadcast (stride-0) dimensions count once."""
    if not strides or len(strides) != len(dims):
        return math.prod(dims)
    return math.prod(d for d, s in zip(dims, strides) if s != 0)


def _iteration_space(a: Args, numels: int) -> float:
    """Elements the kernel visits: the product of its trailing element counts (xnumel, and r0_numel
    for a reduction; Inductor passes them after the pointers), or no bound when they are missing."""
    scalars = [a.ints(i) for i in range(len(a.dims)) if not a.is_tensor(i)]
    counts = [v[0] for v in scalars[-numels:] if v and len(v) == 1]
    return float(math.prod(counts)) if len(counts) == numels else math.inf


def template_gemm(a: Args) -> Est | None:
    """An Inductor GEMM template (max-autotune's ``triton_tem_fused_mm`` / ``addmm`` / ``bmm``): the
    first two arguments that chain as A (.., m, k) x B (.., k, n) with an (.., m, n) argument for
    the output; other arguments (a bias, a fused epilogue's inputs) add their bytes."""
    from itertools import permutations

    from .ops import _gemm

    idx = [i for i in a.tensors() if len(a.shape(i)) in (2, 3)]
    for i, j in permutations(idx, 2):
        x, w = a.shape(i), a.shape(j)
        if len(x) != len(w) or x[:-2] != w[:-2] or x[-1] != w[-2]:
            continue
        m, k, n = x[-2], x[-1], w[-1]
        out = next((o for o in idx if o not in (i, j) and a.shape(o)[-2:] == (m, n)), None)
        if out is None:
            continue
        rest = sum(a.nbytes(o) for o in a.tensors() if o not in (i, j, out))
        batch = x[0] if len(x) == 3 else 1
        return _gemm(m, n, k, batch, a.dtype(), a.nbytes(i), a.nbytes(j) + rest, a.nbytes(out))
    return None


def inductor_rule(name: str):
    """The cost rule of one Inductor kernel name (module docstring)."""
    if name.startswith(TEMPLATE_PREFIX):
        return template_gemm
    kind, flops_per, looped = _kind(name), _flops_per(name), name.startswith("triton_red_")
    in_place_grad = "softmax_backward" in name
    pointwise = name.startswith("triton_poi_")

    def rule(a: Args) -> Est | None:
        idx = a.tensors()
        if not idx:
            return None
        strides = (a.extra or {}).get("Input Strides") or ()
        iters = _iteration_space(a, 1 if pointwise else 2)
        sizes = [min(_spanned(a.shape(i), strides[i] if i < len(strides) else None), iters) * a.esize(i)
                 for i in idx]
        elements = min(max(math.prod(a.shape(i)) for i in idx), iters)
        out_b, in_b = sizes[-1], sum(sizes[:-1])
        if looped and len(sizes) > 1 and out_b >= max(sizes[:-1]) / 2:
            in_b += max(sizes[:-1])                 # the normalising loop reads the input again
        if in_place_grad and sizes.count(max(sizes)) == 1:
            out_b += max(sizes)                     # the gradient overwrites the logits (in_out_ptr0)
        big = max(idx, key=lambda i: math.prod(a.shape(i)))
        dtype = (dtype_of(a.types[big]) if big < len(a.types) else None) or a.dtype()
        return Est(kind, flops_per * elements, dtype, input_bytes=in_b, output_bytes=out_b,
                   shape={"elements": float(elements)})
    return rule
