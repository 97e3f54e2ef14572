"""The optimizer step's ops (cost of one training step after the pipeline drains): the
data-parallel gradient reduction and parameter gather, the update's memory traffic and Muon's
Newton-Schulz GEMMs (used by workload/transformer.py build_graph)."""
from __future__ import annotations

import math
from dataclasses import replace

from ..spec.model import DType
from .graph import Collective, Op, OpKind, Phase, shape
from .opbuild import COLL_CODE, gemm
from .spec import Mode, Optimizer, Workload

_OPT_BYTES_PER_PARAM = {  # bytes read + written per parameter by one optimizer step
    Optimizer.ADAM: 4 * 4 + 2 + 3 * 4 + 2,     # read fp32 p, m, v, grad; write p, m, v, bf16 copy
    Optimizer.ADAMW: 4 * 4 + 2 + 3 * 4 + 2,
    Optimizer.SGD: 3 * 4 + 2 * 4 + 2,
    Optimizer.MUON: 3 * 4 + 2 * 4 + 2,         # momentum as SGD's; the Newton-Schulz GEMMs are muon_ops
    Optimizer.NONE: 0,
}

NS_STEPS = 5     # Newton-Schulz iterations per Muon update (Jordan et al. 2024; Moonlight, Liu et al. 2025 §2)


def muon_ops(wl: Workload, layer_ops: list[Op]) -> list[Op]:
    """Muon's orthogonalisation of the layers' weight-matrix updates: each of NS_STEPS quintic
    Newton-Schulz steps on an m x n matrix (m <= n) is three bf16 GEMMs, A = X X^T (m x n x m),
    B = bA + cA^2 (m x m x m), X = aX + BX (m x m x n) (Jordan et al. 2024). Each matrix (its TP
    shard, orthogonalised as a block) is updated by one owner among the data-parallel replicas that
    hold it, which then shares the new weights in the all-gather ZeRO already runs (nanochat's
    DistMuon; DMuon's owner-centric scheme: about 2% over AdamW), so a rank runs 1 / replicas of the
    iterations; gathering every matrix on every rank instead (Moonlight's Distributed Muon, Liu et
    al. 2025 §2.3) would repeat them dp times. With pipeline stages a device updates its stage's
    layers (the busiest stage's share). The ops belong to no layer: the optimizer runs once per step
    after the pipeline drains."""
    owners = max(1, wl.parallelism.replicas)
    # with pipeline stages a device holds (and updates) its stage's layers only: the busiest stage's
    stage = max(wl.stage_layers()) / wl.model.layers
    ops: list[Op] = []
    share: dict[str, tuple[float, int]] = {}    # per matrix: iterations due to this rank so far, emitted
    for op in layer_ops:
        if op.kind is not OpKind.GEMM or op.layer < 0 or op.weight_bytes <= 0:
            continue
        k, n, b = op.shape["k"], op.shape["n"], op.shape.get("batch", 1)
        small, big = min(k, n), max(k, n)
        base = op.name.split(".")[0]
        # a routed expert's replicas are the dp / ep ranks that hold it (cost/memory.py)
        routed = wl.model.is_moe_layer(op.layer) and base in ("mlp_up", "mlp_down")
        holders = max(1, owners // wl.parallelism.ep) if routed else owners
        due, done = share.get(base, (0.0, 0))
        due += op.count * NS_STEPS * stage / holders
        runs = math.floor(due + 1e-9) - done        # whole iterations, the layers taking turns
        share[base] = (due, done + runs)
        if runs <= 0:
            continue
        for part, (m_, k_, n_) in (("gram", (small, big, small)), ("square", (small, small, small)),
                                   ("update", (small, small, big))):
            ns = gemm(f"muon_{part}.{base}.{op.layer}", -1, Phase.OPTIMIZER, wl.dtype, m_, k_, n_, batch=b,
                      weight=False)
            ops.append(replace(ns, count=runs))
    return ops


def optimizer_ops(wl: Workload) -> list[Op]:
    """Data-parallel gradient reduction and the optimizer update, for this rank's parameter shard."""
    from ..cost.memory import expert_params_per_device, gathered_weight_bytes, params_per_device

    par = wl.parallelism
    p_local = params_per_device(wl, sharded_by_zero=False)
    gathered = gathered_weight_bytes(wl) / p_local if p_local else wl.dtype.bytes    # per parameter
    # an expert's replicas are the dp / ep ranks that hold it: its gradients reduce over those only
    p_expert = expert_params_per_device(wl) if par.ep > 1 else 0.0
    ops: list[Op] = []
    # the dense weights' replicas are the dp x cp ranks, tp devices apart; a routed expert's are the
    # dp / ep ranks that hold it (times cp), ep x tp x cp apart (cost/estimate.py OpCoster.comm_time)
    for name, params, ranks, group in (("dp", p_local - p_expert, par.replicas, {"inner": float(par.tp)}),
                                       ("dp_expert", p_expert, par.dp // par.ep * par.cp, {"stride": par.ep})):
        if ranks <= 1 or params <= 0:
            continue
        grad_bytes = params * (wl.grad_bytes if wl.mode is Mode.TRAIN else wl.dtype.bytes)
        weight_bytes = params * gathered
        kind = Collective.REDUCE_SCATTER if wl.memory.zero_stage >= 1 else Collective.ALL_REDUCE
        ops.append(Op(f"{name}_grad_reduce", OpKind.COLLECTIVE, Phase.OPTIMIZER, -1, 0.0, wl.dtype,
                      input_bytes=grad_bytes, output_bytes=grad_bytes,
                      shape=shape(collective=COLL_CODE[kind], bytes=grad_bytes, ranks=ranks, scope=1, **group)))
        if wl.memory.zero_stage >= 1:
            ops.append(Op(f"{name}_param_gather", OpKind.COLLECTIVE, Phase.OPTIMIZER, -1, 0.0, wl.dtype,
                          input_bytes=weight_bytes, output_bytes=weight_bytes,
                          shape=shape(collective=COLL_CODE[Collective.ALL_GATHER], bytes=weight_bytes,
                                      ranks=ranks, scope=1, **group)))
    shard = p_local / (par.replicas if wl.memory.zero_stage >= 1 else 1)
    per = _OPT_BYTES_PER_PARAM[wl.optimizer]
    if per:
        ops.append(Op("optimizer_step", OpKind.OPTIMIZER, Phase.OPTIMIZER, -1, 10.0 * shard, DType.FP32,
                      input_bytes=shard * per * 0.6, output_bytes=shard * per * 0.4,
                      shape=shape(elements=shard)))
    return ops
