"""What one transformer layer keeps for backward, by saved-tensor class (Korthikanti et al. 2022
§4.1, extended to latent attention, recurrent mixers, mixtures of experts, low-precision recipes and
the recompute settings of workload/recompute.py). cost/memory.py sums it over layers and
micro-batches in flight; the offload / recompute planner (schedule/) acts on its classes."""
from __future__ import annotations

import functools

from ..workload.precision import quantized_fraction
from ..workload.recompute import block_fraction, norm_dropped_fraction, op_saved_elements
from ..workload.spec import Framework, Mode, Recompute, RecomputeModule, Workload
from ..workload.transformer import hot_rank_copies


def saved_tensor_bytes(wl: Workload, *, recompute: Recompute | None = None) -> dict[str, float]:
    """Bytes one layer keeps for backward, by tensor class, for one micro-batch on one TP rank.

    Korthikanti §4.1's breakdown as named classes (the offload/recompute planner acts on them):
    ``input`` (layer input = first norm input), ``attn_norm`` (QKV input), ``qkv`` (Q, K, V),
    ``attn_out`` (attention output = projection input), ``mlp_norm`` (second norm input + FFN
    input), ``mlp_act`` (activation-function inputs), ``mlp_mid`` (second-linear input), ``masks``
    (dropout masks, 1 B/element), ``scores`` (softmax, its dropout mask and output; 0 with
    FlashAttention or selective recompute), and for a mixture of experts ``moe_in``: each token's k
    routed copies, which the experts' first GEMM keeps as its input (whole on every TP rank, as the
    experts are split over them; on expert parallelism's most loaded rank), and the router's fp32
    scores. Full recompute keeps ``input`` only (on recompute_layers of each chunk: the mean), a
    selective one drops what its modules would keep, per-op checkpointing keeps its policy's outputs
    (workload/recompute.py)."""
    if recompute is None and wl.memory.recompute is Recompute.FULL and wl.memory.recompute_layers:
        # recompute_layers: the mean of the layers recomputed (input only) and those kept whole
        f = block_fraction(wl)
        whole, kept = saved_tensor_bytes(wl, recompute=Recompute.NONE), saved_tensor_bytes(wl, recompute=Recompute.FULL)
        return {k: v * (1 - f) + f * kept.get(k, 0.0) for k, v in whole.items()}
    m, par = wl.model, wl.parallelism
    recompute = wl.memory.recompute if recompute is None else recompute
    s, b, h, t = wl.seq_len / par.cp, wl.micro_batch, m.hidden, par.tp
    e = wl.memory.activation_bits / 8            # bytes per stored activation element (2 in the paper)
    sbh = s * b * h
    rep = t if par.sp else 1                     # replicated tensors are sharded only with SP
    if recompute is Recompute.FULL:
        return {"input": e * sbh / rep}          # Table 2 last row: 2sbh (no SP split in the paper)
    if recompute is Recompute.OP:                # torchtitan's per-op checkpointing (workload/recompute.py)
        return {k: e * s * b * v for k, v in op_saved_elements(wl).items()}
    mods = wl.memory.recomputed(recompute)
    mask = 1.0 if m.dropout else 0.0
    gated = 2 if m.activation.gated else 1
    # the mean layer: with block_pattern a layer holds a mixer or an FFN
    mix, ffn = m.mixer_layers / m.layers, m.ffn_layers / m.layers
    # FFN width per token of the mean layer by part: dense FFNs, the k routed experts, shared experts
    moe = m.moe_layers / m.layers
    # the routed copies on the most loaded expert-parallel rank, which runs out of memory first
    # (workload/transformer.py hot_rank_copies: skewed routing and the random excess)
    routed = s * b * m.experts_per_token
    hot = hot_rank_copies(routed, par.ep, par.ep_imbalance) / routed if m.moe else 1.0
    dense_w, routed_w, shared_w = ffn * m.ffn - moe * m.ffn, hot * moe * m.expert_ffn * m.experts_per_token, \
        moe * m.shared_expert_ffn
    no_mlp, no_moe = RecomputeModule.MLP in mods, RecomputeModule.MOE in mods
    no_shared = no_moe or RecomputeModule.SHARED_EXPERTS in mods
    act_w = dense_w * (not no_mlp) + routed_w * (not no_moe) + shared_w * (not no_shared)
    mid_w = act_w - routed_w * (not no_moe and RecomputeModule.MOE_ACT in mods)
    # a saved GEMM input: Transformer Engine's linears keep their quantized column-wise copies
    # (workload/precision.py) on the share of layers a recipe quantizes
    frac = quantized_fraction(wl) if wl.mode is Mode.TRAIN and wl.framework is Framework.FUSED else 0.0
    qa = wl.precision.element_bytes(weight=False) if frac else e
    q = frac * qa + (1 - frac) * e
    out = {
        "input": e * sbh / rep,
        "attn_norm": (mix - norm_dropped_fraction(wl, False, mods)) * q * sbh / rep,
        "qkv": e * s * b * _mean_layer(m, _qkv_elements_per_token(m, t, RecomputeModule.MLA_UP_PROJ not in mods),
                                       _recurrent_in_elements(m, t)),
        "attn_out": e * s * b * _mean_layer(m, m.heads * m.v_head_dim * (1 + m.attention_gate) / t,
                                            2 * m.recurrent_value_heads * m.recurrent_value_dim / t),
        # the second norm's input stays; the FFN's input (the norm's output) is a GEMM input
        "mlp_norm": (ffn * e + (ffn - norm_dropped_fraction(wl, True, mods)) * q) * sbh / rep,
        # eager PyTorch runs a gated activation as two kernels, and the product's backward keeps
        # silu(gate) too (workload/eager.py)
        "mlp_act": (gated + (wl.framework is Framework.EAGER and gated > 1)) * e * s * b * act_w / t,
        "mlp_mid": q * s * b * mid_w / t,
        "masks": (mix + ffn) * mask * sbh / rep,
        "scores": 0.0,
        # the routed copies: the experts' first GEMM input; eager / compiled PyTorch weights the
        # experts' outputs by the router scores after the down projection (torchtitan's combine,
        # pytorch/torchtitan PR 4095), which keeps those too; Megatron weights the activation
        "moe_in": 0.0 if no_moe else moe * s * b * (hot * q * m.experts_per_token * h * (1 + (wl.framework is not
                                                    Framework.FUSED)) + 4 * m.experts),
    }
    if frac and wl.memory.flash_attention:      # FlashAttention's backward keeps its output in the dtype too
        out["attn_out"] *= (e + frac * qa) / e
    elif frac:
        out["attn_out"] *= q / e
    if not wl.memory.flash_attention and RecomputeModule.CORE_ATTN not in mods:
        # softmax output (e), its dropout mask (1 B), dropout output (e): 5as²b at 16 bits
        out["scores"] = m.attention_layers / m.layers * m.heads * s * s * b * (e + (mask + e if m.dropout else 0.0)) / t
    return out


def _mean_layer(m, attention: float, recurrent: float) -> float:
    """A per-layer quantity of the mean layer of a hybrid model (saved_tensor_bytes' classes)."""
    return attention if m.attention_layers == m.layers else \
        (m.attention_layers * attention + m.recurrent_layers * recurrent) / m.layers


def _recurrent_in_elements(m, t: int) -> float:
    """What a recurrent layer keeps for backward in place of Q, K and V, per token on one of
    ``t`` TP ranks: its input projection's outputs (convolution input, z, gates) and the
    convolution's output (workload/mixers.py recurrent_ops)."""
    conv = m.recurrent_conv_dim / t
    return 2 * conv + m.recurrent_value_heads * (m.recurrent_value_dim + m.recurrent_gates) / t


def _qkv_elements_per_token(m, t: int, up: bool = True) -> float:
    """Q, K and V elements one token keeps for backward on one of ``t`` TP ranks. MLA trains
    unabsorbed: Q and K of qk head dims and V of v_head_dim per head, split over the ranks, plus the
    latents every rank computes whole (c_Q and its norm, c_KV with the RoPE key, and its norm);
    without the per-head part (``up`` False) when its up projections are recomputed."""
    if not m.mla:
        return (m.q_dim * (1 + m.attention_gate) + 2 * m.kv_dim) / t
    latents = 2 * m.q_lora_rank + 2 * m.kv_lora_rank + m.rope_head_dim
    return up * m.heads * (2 * m.head_dim + m.v_head_dim) / t + latents


@functools.lru_cache(maxsize=4096)
def activation_bytes_per_layer(wl: Workload, *, recompute: Recompute | None = None) -> float:
    """Korthikanti §4.1 / Table 2, for one layer and one micro-batch, on one TP rank (bytes); cached
    per (frozen) workload, as every pipeline device's memory asks for it."""
    return sum(saved_tensor_bytes(wl, recompute=recompute).values())
