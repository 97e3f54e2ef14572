"""Tensor-parallel communication overlapped with the GEMMs (``parallelism.tp_overlap``).

With sequence parallelism each transformer block all-gathers its input before the first GEMM and
reduce-scatters after the last one (Korthikanti et al. 2022 §4.2.2). Megatron-LM's
``--tp-comm-overlap`` (Transformer Engine's userbuffers) splits each such collective into chunks
that run while the GEMM it feeds (all-gather + GEMM) or drains (GEMM + reduce-scatter) computes the
others; PyTorch's async TP does the same (torchtitan). What remains exposed is the collective's time
beyond its GEMM's: cost/roofline.py prices the pair from the shape keys this pass adds to the
collective (``hide_*``: the partner GEMM's m, n, k, batch, dtype and operand formats).
"""
from __future__ import annotations

from dataclasses import replace

from ..spec.model import DType
from .graph import Op, OpKind, Phase, shape
from .spec import Workload

_TP_PREFIXES = ("tp_attn", "tp_mlp")
_REACH = 8      # ops searched on each side for the partner GEMM


def hide_keys(gemm: Op) -> dict[str, float]:
    """The shape keys that describe ``gemm`` to the collective it hides."""
    s = gemm.shape
    keys = {"hide_m": s["m"], "hide_n": s["n"], "hide_k": s["k"], "hide_batch": s.get("batch", 1),
            "hide_dtype": float(list(DType).index(gemm.dtype))}
    keys.update({f"hide_{k}": s[k] for k in ("in_bits", "weight_bits", "out_bits") if k in s})
    return keys


def overlap_tp_comm(wl: Workload, ops: list[Op]) -> list[Op]:
    """``ops`` with each sequence-parallel collective of the layers paired with its nearest GEMM of
    the same phase: the one before it for a reduce-scatter's forward, the one after for an
    all-gather (and the nearest either side in backward, whose collectives swap)."""
    if not wl.parallelism.tp_overlap:
        return ops
    out = list(ops)
    for i, op in enumerate(ops):
        if op.kind is not OpKind.COLLECTIVE or op.layer < 0 or not op.name.startswith(_TP_PREFIXES):
            continue
        first = 1 if ".ag" in op.name else -1           # an all-gather feeds the GEMM after it
        if op.phase is Phase.FWD:
            order = [i + first * d for d in range(1, _REACH + 1)] + [i - first * d for d in range(1, _REACH + 1)]
        else:
            order = [i + side * d for d in range(1, _REACH + 1) for side in (first, -first)]
        partner = next((ops[j] for j in order if 0 <= j < len(ops) and ops[j].kind is OpKind.GEMM
                        and ops[j].phase is op.phase and "m" in ops[j].shape), None)
        if partner is not None:
            out[i] = replace(op, shape=shape(**op.shape, **hide_keys(partner)))
    return out
