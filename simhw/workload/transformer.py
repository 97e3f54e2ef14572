"""Turn a :class:`Workload` into an op graph for one micro-batch on one tensor-parallel rank.

FLOP counts follow Korthikanti et al. 2022 (arXiv 2205.05198) App. A: a GEMM of m x k by k x n
is 2mkn FLOPs; attention scores and attention over V are 2·b·s²·h each over the full s x s matrix
when the kernel computes it (unfused attention, as in the paper), and half of that for a causal
model under FlashAttention, which skips the masked blocks (Dao 2023, §3.1); model FLOPs count what
the causal math needs, so MFU at long sequences is not inflated by masked work. Backward is twice
forward for GEMMs.
FlashAttention's backward executes 2.5x its forward (it recomputes QK^T: Dao 2023, §3.1).
Model FLOPs (MFU) count matrix multiplications only, as Eq. 7 does; norms, activations and the
loss execute FLOPs that the convention leaves out.
"""
from __future__ import annotations

import functools
import math
from dataclasses import replace

from ..spec.model import DType
from .graph import Collective, Graph, Op, OpKind, Phase, shape
from .eager import compiled_ops, eager_ops
from .mixers import attention_ops, mla_ops, recurrent_ops
from .opbuild import COLL_CODE, backward_ops, elementwise, gemm
from .optimizer_ops import muon_ops, optimizer_ops
from .overlap import overlap_tp_comm
from .precision import low_precision_ops
from .recompute import block_recomputed, op_recompute_ops, recompute_ops
from .spec import Framework, Mode, Optimizer, Recompute, Workload


def build_graph(wl: Workload, compact: bool = False) -> Graph:
    """The ops of one micro-batch (train, prefill) or one decode step, on one TP rank.

    ``compact=True`` emits the first layer of each pipeline stage once with ``count`` = layers
    per stage (all layers of a stage are identical); totals are the same, and it is ~20x faster.
    """
    m, par = wl.model, wl.parallelism
    e = wl.dtype.bytes
    k = wl.decode.speculative_tokens if wl.mode is Mode.DECODE else 0
    if wl.mode is Mode.DECODE:
        batch = wl.micro_batch * wl.decode.samples
        # speculative decoding verifies the k draft tokens and the next one in one pass
        s_q, s_kv = 1 + k, wl.decode.context_len + max(1, wl.decode.new_tokens) // 2 + k
    else:
        batch, s_q = wl.micro_batch, wl.seq_len // par.cp
        s_kv = wl.seq_len
    n = batch * s_q                      # tokens per micro-batch on this rank
    train = wl.mode is Mode.TRAIN
    recompute = wl.memory.recompute if train else Recompute.NONE
    ops: list[Op] = []
    ops.append(Op("embedding", OpKind.EMBEDDING, Phase.FWD, -1, 0.0, wl.dtype,
                  weight_bytes=n * m.hidden * e, input_bytes=n * 8, output_bytes=n * m.hidden * e,
                  shape=shape(elements=n * m.hidden)))
    groups = _layer_groups(wl) if compact else [(i, 1) for i in range(m.layers)]
    ids = [i for i, _ in groups]
    layer_fwd = [_layer_ops(wl, i, n, batch, s_q, s_kv, Phase.FWD) for i in ids]
    if compact:
        layer_fwd = [[replace(op, count=c) for op in ops_i] for ops_i, (_, c) in zip(layer_fwd, groups)]
    for ops_i in layer_fwd:
        ops.extend(ops_i)
    head_tokens = n if wl.mode is not Mode.PREFILL else batch
    ops.extend(_head_ops(wl, head_tokens, Phase.FWD))
    ops.extend(_draft_ops(wl, batch, s_kv, k))
    mtp = _mtp_ops(wl, n, batch, s_q, s_kv) if train else []
    ops.extend(op for module in mtp for op in module[0])
    if train:
        for j, (module, layer) in reversed(list(enumerate(mtp))):
            if recompute is not Recompute.NONE:
                ops.extend(_as_recompute(op) for op in _mtp_named(j, _mtp_recomputed(wl, layer)))
            ops.extend(b for op in reversed(module) for b in backward_ops(op))
        ops.extend(b for op in reversed(_head_ops(wl, head_tokens, Phase.FWD)) for b in backward_ops(op))
        for i in reversed(range(len(ids))):
            if recompute is Recompute.FULL and block_recomputed(wl, ids[i]):
                ops.extend(_as_recompute(op) for op in _recomputed(wl, layer_fwd[i]))
            elif recompute is Recompute.SELECTIVE:     # the modules it names (workload/recompute.py)
                ops.extend(_as_recompute(op) for op in recompute_ops(wl, ids[i], layer_fwd[i]))
            elif recompute is Recompute.OP:            # torchtitan's per-op policy (workload/recompute.py)
                ops.extend(_as_recompute(op) for op in op_recompute_ops(wl, ids[i], layer_fwd[i]))
            ops.extend(b for op in reversed(layer_fwd[i]) for b in backward_ops(op))
        ops.extend(backward_ops(ops[0]))
        ops.extend(optimizer_ops(wl))
        if wl.optimizer is Optimizer.MUON:
            ops.extend(muon_ops(wl, [op for ops_i in layer_fwd for op in ops_i]))
        if wl.framework is Framework.EAGER:     # autocast casts, fp32 residual stream, aten kernels (eager.py)
            ops = eager_ops(wl, ops, wl.microbatches)
        elif wl.framework is Framework.COMPILED:    # autocast casts around Inductor's fused kernels
            ops = compiled_ops(wl, ops, wl.microbatches)
    ops = low_precision_ops(wl, ops)     # precision.recipe: FP8 / NVFP4 layer linears and their casts
    ops = overlap_tp_comm(wl, ops)       # parallelism.tp_overlap: TP collectives under their GEMMs
    bits = 8 * wl.dtype.bytes
    w_bits = wl.memory.weight_bits_effective(bits)
    if w_bits < bits:   # weight-only quantization: the layers' linear weights stored narrower
        ops = [_weight_quantized(op, w_bits) for op in ops]
    return Graph(name=wl.name, ops=tuple(ops), layers=m.layers, tokens=n)


def _weight_quantized(op: Op, w_bits: float) -> Op:
    """A layer's weight GEMM reading its weights at ``w_bits`` per element (scales included) and
    computing in its own dtype (AWQ, GPTQ, Marlin kernels); the embedding and the output layer stay
    in the dtype, as those methods leave them."""
    if op.kind is not OpKind.GEMM or op.layer < 0 or op.weight_bytes <= 0 or "weight_bits" in op.shape:
        return op
    return replace(op, weight_bytes=op.weight_bytes * w_bits / (8 * op.dtype.bytes),
                   shape=shape(**op.shape, weight_bits=w_bits))


def _draft_ops(wl: Workload, batch: int, s_kv: int, k: int) -> list[Op]:
    """The drafter of speculative decoding: k sequential draft tokens, each from one more
    transformer layer of the model's last layer's kind that takes the hidden state and the last
    token's embedding through a 2h x h projection and shares the output head (DeepSeek-V3's
    multi-token prediction module, arXiv 2412.19437 §2.2, as served for speculation; EAGLE's
    one-layer drafter, Li et al. 2024). It runs on the last pipeline stage, one decode step each.
    With ``decode.draft_model`` each draft token is instead one decode step of that model (its
    embedding, layers and head, on the same tensor-parallel ranks; Leviathan et al. 2023)."""
    m, dt = wl.model, wl.dtype
    ops: list[Op] = []
    last = m.layers - 1
    draft_model = wl.decode.draft_model
    if k and draft_model is not None:
        dwl = replace(wl, model=draft_model, parallelism=replace(wl.parallelism, pp=1, layout=""),
                      decode=replace(wl.decode, speculative_tokens=0, draft_model=None))
        step = [replace(op, layer=last) for op in build_graph(dwl, compact=True).ops]
        return [replace(op, name=f"draft{j}.{op.name}") for j in range(k) for op in step]
    for j in range(k):
        draft = [gemm("mtp_proj", last, Phase.FWD, dt, batch, 2 * m.hidden, m.hidden)]
        draft += _layer_ops(wl, last, batch, batch, 1, s_kv, Phase.FWD)
        draft += _head_ops(wl, batch, Phase.FWD)
        ops += [replace(op, name=f"draft{j}.{op.name}") for op in draft]
    return ops


def _mtp_ops(wl: Workload, n: int, batch: int, s_q: int, s_kv: int) -> list[tuple[list[Op], list[Op]]]:
    """Training's multi-token prediction modules (ModelConfig.mtp_layers; DeepSeek-V3, arXiv
    2412.19437 §2.2, Eq. 21-25): module k looks up the embeddings of the tokens k ahead in the shared
    embedding, RMS-normalises them and the previous depth's hidden states, projects the
    concatenation (2h -> h, M_k), runs one transformer layer of the last layer's kind and the
    shared output head and loss. It runs after the model's own head (Megatron-Core's
    MultiTokenPredictionBlock): its body where the loss runs or on a layout's ``m`` chunk, its output
    layer and loss (``mtp{k}.head.``) on the loss's device, where Megatron-Core's process_mtp_loss
    computes them (Workload.piece_devices; runs_with_mtp). Its ops belong to no layer (layer -1,
    named ``mtp{k}.``; the lookup is an elementwise gather, not the first stage's embedding) and a
    precision recipe leaves its GEMMs in the dtype (which Megatron quantizes there is UNVERIFIED).
    Returns, per module, (its ops, its layer's forward ops as the last layer's, for the recompute
    policy)."""
    m, dt, h = wl.model, wl.dtype, wl.model.hidden
    last = m.layers - 1
    out = []
    for j in range(m.mtp_layers):
        layer = _layer_ops(wl, last, n, batch, s_q, s_kv, Phase.FWD)
        module = [elementwise(f"mtp{j}.embed", OpKind.ELEMENTWISE, -1, Phase.FWD, dt, n * h, reads=1, flops_per=0),
                  elementwise(f"mtp{j}.norm_h", OpKind.NORM, -1, Phase.FWD, dt, n * h, flops_per=5),
                  elementwise(f"mtp{j}.norm_e", OpKind.NORM, -1, Phase.FWD, dt, n * h, flops_per=5),
                  gemm(f"mtp{j}.mtp_proj", -1, Phase.FWD, dt, n, 2 * h, h)]
        module += _mtp_named(j, layer)
        module += [replace(op, name=f"mtp{j}.head.{op.name}") for op in _head_ops(wl, n, Phase.FWD)]
        out.append((module, layer))
    return out


def runs_with_mtp(op: Op) -> bool:
    """Whether ``op`` is the body of a multi-token prediction module, which runs on its own
    pipeline device (its output layer and loss run with the model's)."""
    return op.layer < 0 and op.name.startswith("mtp") and ".head." not in op.name


def _mtp_named(j: int, ops: list[Op]) -> list[Op]:
    """Ops built as the last layer's, moved to module ``j`` of the multi-token prediction block."""
    return [replace(op, layer=-1, name=f"mtp{j}.{op.name}") for op in ops]


def _mtp_recomputed(wl: Workload, layer: list[Op]) -> list[Op]:
    """What the workload's recompute policy re-runs of an MTP module's layer: its whole forward under
    full recompute of every layer (Megatron builds the module's layer with the model's config), the
    selected modules or ops otherwise (workload/recompute.py)."""
    recompute, last = wl.memory.recompute, wl.model.layers - 1
    if recompute is Recompute.FULL:
        return _recomputed(wl, layer) if block_recomputed(wl, last) else []
    if recompute is Recompute.SELECTIVE:
        return recompute_ops(wl, last, layer)
    return op_recompute_ops(wl, last, layer)


def _layer_groups(wl: Workload) -> list[tuple[int, int]]:
    """(first layer, count) of each kind of layer (ModelConfig.layer_kind: dense or routed FFN,
    windowed or global attention; with a precision recipe, quantized or kept in the dtype; with
    recompute_layers, recomputed or kept) within each pipeline stage, in order of first appearance."""
    m, precision, out = wl.model, wl.precision, []
    for held in wl.device_layers():
        kinds: dict = {}
        for i in held:
            kind = (m.layer_kind(i), precision.quantized(i, m.layers), block_recomputed(wl, i))
            j, c = kinds.get(kind, (i, 0))
            kinds[kind] = (j, c + 1)
        out += sorted(kinds.values())
    return out


def _tp_comm(wl: Workload, name: str, layer: int, phase: Phase, elements: float) -> list[Op]:
    """Megatron TP: an all-reduce after the attention and the MLP block (reduce-scatter with SP)."""
    par = wl.parallelism
    if par.tp == 1:
        return []
    if not par.sp:
        return [_collective(wl, name, layer, phase, Collective.ALL_REDUCE, elements)]
    return [_collective(wl, name, layer, phase, Collective.REDUCE_SCATTER, elements),
            _collective(wl, name + ".ag", layer, phase, Collective.ALL_GATHER, elements)]


def _layer_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase) -> list[Op]:
    m, t, dt = wl.model, wl.parallelism.tp, wl.dtype
    h = m.hidden
    # data-parallel attention: this rank attends for its own batch / tp sequences with whole heads,
    # then all-gathers the tokens for the TP-split FFN and reduce-scatters them back (SGLang's DP
    # attention, as served for DeepSeek-V3: the MLA latent cache is then not replicated)
    dpa = wl.parallelism.attention_dp
    ta, na, ba = (1, n // t, batch // t) if dpa else (t, n, batch)
    ops: list[Op] = []
    if m.has_mixer(i):      # (a block_pattern layer has its mixer or its FFN only)
        ops.append(elementwise(f"attn_norm.{i}", OpKind.NORM, i, phase, dt, na * h, flops_per=5))
        attention = recurrent_ops if m.is_recurrent(i) else mla_ops if m.mla else attention_ops
        ops += attention(wl, i, na, ba, s_q, s_kv, phase, ta)
        if not dpa:
            ops.extend(_tp_comm(wl, f"tp_attn.{i}", i, phase, n * h))
        ops.append(elementwise(f"residual1.{i}", OpKind.ELEMENTWISE, i, phase, dt, na * h, reads=2))
    if not m.has_ffn(i):
        return ops
    ops.append(elementwise(f"mlp_norm.{i}", OpKind.NORM, i, phase, dt, na * h, flops_per=5))
    if dpa:
        ops.append(_collective(wl, f"dpa_gather.{i}", i, phase, Collective.ALL_GATHER, n * h))
    ops.extend(_moe_ops(wl, i, n, phase) if m.is_moe_layer(i) else _mlp_ops(wl, i, n, n, m.ffn // t, 1.0, phase))
    if dpa:
        ops.append(_collective(wl, f"dpa_scatter.{i}", i, phase, Collective.REDUCE_SCATTER, n * h))
    else:
        ops.extend(_tp_comm(wl, f"tp_mlp.{i}", i, phase, n * h))
    ops.append(elementwise(f"residual2.{i}", OpKind.ELEMENTWISE, i, phase, dt, na * h, reads=2))
    return ops


def _collective(wl: Workload, name: str, layer: int, phase: Phase, kind: Collective, elements: float) -> Op:
    """One collective of ``elements`` (the whole tensor) over the tensor-parallel group."""
    nbytes = elements * wl.dtype.bytes
    return Op(name, OpKind.COLLECTIVE, phase, layer, 0.0, wl.dtype, input_bytes=nbytes, output_bytes=nbytes,
              shape=shape(collective=COLL_CODE[kind], bytes=nbytes, ranks=wl.parallelism.tp, scope=0))


def _mlp_ops(wl: Workload, i: int, tokens: float, m_: float, ffn: int, groups: float, phase: Phase,
             prefix: str = "mlp") -> list[Op]:
    """Up projection (gate and up when gated), activation, down projection of ``tokens`` tokens, as
    ``groups`` GEMMs of ``m_`` rows each (one per active expert; 1 for a dense FFN)."""
    m, dt = wl.model, wl.dtype
    up_n = (2 if m.activation.gated else 1) * ffn
    return [gemm(f"{prefix}_up.{i}", i, phase, dt, m_, m.hidden, up_n, batch=groups),
            elementwise(f"{prefix}_act.{i}", OpKind.ELEMENTWISE, i, phase, dt, tokens * ffn,
                         reads=2 if m.activation.gated else 1, flops_per=8),
            gemm(f"{prefix}_down.{i}", i, phase, dt, m_, ffn, m.hidden, batch=groups)]


def _moe_ops(wl: Workload, i: int, n: int, phase: Phase) -> list[Op]:
    """Mixture of experts (Shazeer et al. 2017; Mixtral, arXiv 2401.04088): a router GEMM and top-k
    gate, each token's hidden state copied to its k experts, every active expert's FFN as one GEMM
    group over its tokens (experts sharded over the tensor-parallel ranks, as vLLM runs Mixtral),
    and the k outputs combined; shared experts (DeepSeekMoE) as one more dense FFN that every token
    passes. Active experts: ModelConfig.active_experts (uniform routing).
    Expert parallelism (ep > 1; GShard, arXiv 2006.16668): a rank holds experts / ep experts and
    receives, by an all-to-all over the ep group, the copies routed to them, which a second
    all-to-all returns; the op graph is the most loaded rank's, which the others wait for: n x k
    copies on average, more by chance and by skewed routing (hot_rank_copies)."""
    m, dt, h, ep = wl.model, wl.dtype, wl.model.hidden, wl.parallelism.ep
    k = m.experts_per_token
    routed = n * k                                   # token-expert pairs this rank sends
    # ... and receives: with ep > 1 the step waits for the most loaded rank
    hot = hot_rank_copies(routed, ep, wl.parallelism.ep_imbalance)
    active = max(1.0, m.active_experts(n * ep) / ep)   # of this rank's experts / ep, hit by the group's tokens
    ops = [gemm(f"moe_router.{i}", i, phase, dt, n, h, m.experts),
           elementwise(f"moe_gate.{i}", OpKind.SOFTMAX, i, phase, dt, n * m.experts, flops_per=5),
           elementwise(f"moe_dispatch.{i}", OpKind.ELEMENTWISE, i, phase, dt, routed * h, reads=1, writes=1,
                        flops_per=0)]
    a2a = _all_to_all(wl, f"moe_a2a.{i}", i, phase, hot * h * dt.bytes) if ep > 1 else []
    ops += a2a
    ops += _mlp_ops(wl, i, hot, hot / active, m.expert_ffn // wl.parallelism.tp, active, phase)
    ops += [replace(op, name=op.name.replace("moe_a2a", "moe_a2a_back")) for op in a2a]
    ops.append(elementwise(f"moe_combine.{i}", OpKind.ELEMENTWISE, i, phase, dt, routed * h, reads=1, writes=0,
                            flops_per=2))
    if m.shared_expert_ffn:   # every token also passes the shared experts, one dense FFN split over TP
        ops += _mlp_ops(wl, i, n, n, m.shared_expert_ffn // wl.parallelism.tp, 1.0, phase, prefix="moe_shared")
    return ops


def hot_rank_copies(mean: float, ranks: int, skew: float = 1.0) -> float:
    """Expected token copies on the most loaded of ``ranks`` expert-parallel ranks that each expect
    ``mean``: ``skew`` x mean (routing that favours some experts), plus the random excess of the
    largest of ``ranks`` counts of ranks x mean copies routed uniformly (balls into bins: Raab &
    Steger 1998, "Balls into Bins: A Simple and Tight Analysis"), capped at every copy on one rank.
    Small decode batches feel it most."""
    if ranks <= 1 or mean <= 0:
        return mean
    return min(ranks * mean, (skew - 1.0) * mean + _max_binomial(mean, ranks))


@functools.lru_cache(maxsize=1024)
def _max_binomial(mean: float, ranks: int) -> float:
    """E[max of ``ranks`` independent Binomial(ranks x mean, 1 / ranks) counts] = the sum over k
    of 1 - F(k)^ranks, taken over mean +- 12 standard deviations (1 below it, 0 above). Past a
    million copies per rank, the Gaussian bound mean + sqrt(2 mean (1 - 1/ranks) ln ranks) (Raab &
    Steger Thm 1, m >= n log n), an excess of well under 1% there. Treating the ranks' counts as
    independent (they share one total) reads up to 6% low against simulated routing at one or two
    copies per rank over 8 ranks, within about 1% from 8 copies on (tests/unit/test_moe.py)."""
    var = mean * (1.0 - 1.0 / ranks)
    if mean > 1e6:
        return mean + math.sqrt(2.0 * var * math.log(ranks))
    n, p = max(1, round(mean * ranks)), 1.0 / ranks
    sd = math.sqrt(var)
    lo, hi = max(0, int(mean - 12 * sd)), min(n, int(mean + 12 * sd) + 2)
    log_n, log_p, log_q = math.lgamma(n + 1), math.log(p), math.log1p(-p)
    cdf, total = 0.0, float(lo)
    for k in range(lo, hi + 1):
        cdf += math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        total += 1.0 - min(cdf, 1.0) ** ranks
    return total


def _all_to_all(wl: Workload, name: str, layer: int, phase: Phase, nbytes: float) -> list[Op]:
    """An all-to-all over the expert-parallel group (ep of the data-parallel ranks: scope 1, so the
    group spans ep x tp x cp devices)."""
    return [Op(name, OpKind.COLLECTIVE, phase, layer, 0.0, wl.dtype, input_bytes=nbytes, output_bytes=nbytes,
               shape=shape(collective=COLL_CODE[Collective.ALL_TO_ALL], bytes=nbytes, ranks=wl.parallelism.ep,
                           scope=1))]


def _head_ops(wl: Workload, tokens: int, phase: Phase) -> list[Op]:
    m, t, dt = wl.model, wl.parallelism.tp, wl.dtype
    vocab = m.vocab // t if m.vocab % t == 0 else -(-m.vocab // t)
    ops = [elementwise("final_norm", OpKind.NORM, -1, phase, dt, tokens * m.hidden, flops_per=5),
           gemm("lm_head", -1, phase, dt, tokens, m.hidden, vocab)]
    if wl.mode is Mode.TRAIN:
        ops.append(elementwise("loss", OpKind.LOSS, -1, phase, DType.FP32, tokens * vocab, reads=1, writes=1, flops_per=5))
    return ops


def _recomputed(wl: Workload, layer: list[Op]) -> list[Op]:
    """The forward ops a full recompute runs again. torch.utils.checkpoint (non-reentrant, eager
    and compiled frameworks) stops as soon as every tensor backward needs has been packed again
    (set_checkpoint_early_stop, on by default): the MLP's down projection saves its inputs before
    it runs, so it and the residual add after it are not recomputed. Megatron's checkpoint
    (the fused framework) re-runs the whole layer."""
    if wl.framework is Framework.FUSED:
        return layer
    last = max((j for j, op in enumerate(layer) if op.name.startswith("mlp_down")), default=len(layer))
    return layer[:last]


def _as_recompute(op: Op) -> Op:
    return Op(op.name + ".recompute", op.kind, Phase.RECOMPUTE, op.layer, op.flops, op.dtype,
              weight_bytes=op.weight_bytes, input_bytes=op.input_bytes, output_bytes=op.output_bytes,
              model_flops=op.model_flops, shape=op.shape, count=op.count)
