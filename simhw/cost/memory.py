"""Memory per device: parameters, gradients, optimizer state, activations, KV cache, logits.

Formulas:
- Activations per layer: Korthikanti et al. 2022 (arXiv 2205.05198) §4.1 and Table 2, generalised
  to grouped-query attention, gated FFNs and models without dropout by keeping each term of the
  paper's breakdown (QKV input 2sbh, Q 2sbh, K and V 2sb·kv_dim each, output-projection input
  2sbh, dropout masks sbh, FFN input 2sbh, activation input 2sb·ffn, second linear input
  2sb·ffn, norms 4sbh, scores 5as²b). For GPT configs it is exactly sbh(34 + 5as/h)
  (cost/saved_tensors.py, with the experts' routed copies and the recompute settings).
- Pipeline: the first 1F1B stage holds p micro-batches of L/p layers (Table 2 note, Eq. 5);
  interleaving multiplies by 1 + (p-1)/(pm) (§4.2.3); extra terms of §4.3.
- Parameters / gradients / optimizer: mixed-precision Adam keeps 2 + 2 + 12 bytes per parameter
  (eager / compiled PyTorch); Megatron (framework: fused) keeps a bf16 model's gradients in fp32,
  2 + 4 + 12 (its README's distributed-optimizer table: 18, or 6 + 12/d distributed),
  and ZeRO stages 1-3 shard optimizer, gradients, parameters over data parallelism (Rajbhandari
  et al. 2020, §5).
- KV cache: 2 · layers · kv_heads · head_dim elements per token at the effective bit width
  including quantisation scales and fp16 outliers (KVQuant, Hooper et al. 2024, §3); multi-head
  latent attention caches layers · (kv_lora_rank + rope_head_dim), whole on every TP rank
  (DeepSeek-V2, arXiv 2405.04434, §2.1.2 and Table 1); sliding-window layers keep each
  sequence's last window of tokens (Mistral 7B, arXiv 2310.06825, §2 rolling buffer cache).
- Logits and loss: standard cross-entropy materialises the bf16 logits, their fp32 upcast, the
  fp32 log-softmax and its fp32 gradient (14 B per token per vocabulary entry); CCE (Wijmans et al.
  2024) keeps only per-token log-sum-exp and loss (8 B per token).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..spec.model import DType
from ..workload.precision import PER_TENSOR, quantized_fraction
from ..workload.spec import Framework, Loss, Mode, Optimizer, OptimizerKernel, PipeSchedule, Workload
from .saved_tensors import activation_bytes_per_layer, saved_tensor_bytes  # noqa: F401  (re-exported)

OPT_STATE_BYTES = {Optimizer.ADAM: 12, Optimizer.ADAMW: 12, Optimizer.SGD: 8, Optimizer.MUON: 8, Optimizer.NONE: 0}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Peak bytes on one device, by part; ``peak_bytes`` is their sum."""

    parameters_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    kv_cache_bytes: float
    logits_bytes: float
    capacity_bytes: float
    optimizer_transient_bytes: float = 0.0  # held only during the optimizer step, when activations are freed
                                            # (foreach AdamW's temporary list, workload/eager.py)
    host_activations_bytes: float = 0.0     # offloaded to host memory (memory.offload_layers); not in the peak

    @property
    def peak_bytes(self) -> float:
        return (self.parameters_bytes + self.gradients_bytes + self.optimizer_bytes
                + max(self.activations_bytes + self.kv_cache_bytes + self.logits_bytes, self.optimizer_transient_bytes))

    @property
    def fits(self) -> bool:
        return self.capacity_bytes <= 0 or self.peak_bytes <= self.capacity_bytes

    def to_dict(self) -> dict:
        out = asdict(self)
        out["peak_bytes"] = self.peak_bytes
        out["fits"] = self.fits
        return out


def params_per_device(wl: Workload, sharded_by_zero: bool = True) -> float:
    """Parameters held by the most loaded device (first pipeline stage: layers + embedding; with a
    V-shaped schedule the first device also holds the output layer, Qi et al. 2024)."""
    layers, other = _params_parts(wl)
    total = layers + other
    if sharded_by_zero and wl.memory.zero_stage >= 3:
        total /= wl.parallelism.replicas
    return total


def mtp_activation_bytes(wl: Workload) -> float:
    """Activations the multi-token prediction modules keep for backward, one micro-batch: each
    module's layer (as the model's layers under the same recompute) and its 2h-wide projection
    input and its head's inputs."""
    d = wl.mtp_modules
    if not d:
        return 0.0
    par = wl.parallelism
    tokens = wl.micro_batch * wl.seq_len / par.cp
    return d * (activation_bytes_per_layer(wl) + 4 * wl.memory.activation_bits / 8 * tokens * wl.model.hidden / par.tp)


def _device_layers(wl: Workload) -> list[int]:
    """Transformer layers each pipeline device holds, the multi-token prediction modules' layers
    counted on theirs (Workload.piece_devices; workload/transformer.py _mtp_ops)."""
    counts = list(wl.stage_layers())
    counts[wl.piece_devices()[2]] += wl.mtp_modules
    return counts


def _params_parts(wl: Workload) -> tuple[float, float]:
    """(transformer-layer parameters, embedding and output-layer parameters) of the most loaded
    device (params_per_device); a drafter and multi-token prediction modules (one layer and a
    2h x h projection each, on their device) count as layers."""
    m, par = wl.model, wl.parallelism
    counts = _device_layers(wl)
    layers = max(counts) * layer_params_per_device(wl)
    if wl.mtp_modules and counts[wl.piece_devices()[2]] == max(counts):
        layers += wl.mtp_modules * 2 * m.hidden * m.hidden / par.tp
    if par.pp == 1 and m.dense_layers:   # one device holds the dense leading layers too (with pp > 1 the
        # most loaded stage is one of routed layers only)
        layers += m.dense_layers * (layer_params_per_device(wl, moe=False) - layer_params_per_device(wl))
    embed = m.embedding_params() / par.tp
    head = m.head_params() / par.tp if par.pp == 1 or not m.tied_embeddings else 0.0
    other = embed + (head if par.pp == 1 else 0.0)
    if par.pp > 1:  # the last stage holds the head instead of the embedding; take the larger
        last = m.head_params() / par.tp + (m.vocab * m.hidden / par.tp if m.tied_embeddings else 0)
        both = par.schedule in (PipeSchedule.V_HALF, PipeSchedule.V_MIN)
        other = embed + m.head_params() / par.tp if both else max(embed, last)
    if wl.mode is Mode.DECODE and wl.decode.speculative_tokens:
        # the drafter (workload/transformer.py _draft_ops): a draft model on the same TP ranks, or
        # one more layer and its 2h x h projection
        draft = wl.decode.draft_model
        layers += draft.params() / par.tp if draft is not None else \
            layer_params_per_device(wl) + 2 * m.hidden * m.hidden / par.tp
    return layers, other


def in_flight_microbatches(wl: Workload) -> float:
    """Micro-batches whose activations the first pipeline stage holds at its peak."""
    par = wl.parallelism
    p, mb = par.pp, wl.microbatches
    if p == 1:
        return 1.0
    sched = par.schedule
    if sched is PipeSchedule.GPIPE:
        return float(mb)
    if sched is PipeSchedule.INTERLEAVED and par.interleave > 1:
        return min(mb, p) * (1 + (p - 1) / (p * par.interleave))   # Korthikanti §4.2.3
    if sched is PipeSchedule.V_HALF:
        return float((p + 2) // 2)                                  # Qi et al. 2024 (seed §7b)
    if sched is PipeSchedule.V_MIN:
        return float((p + 4) // 3)
    return float(min(mb, p))                                        # 1F1B, ZB-H1


def activations_bytes(wl: Workload) -> float:
    """Peak activation bytes on the most loaded pipeline stage (the first, with equal stages), with
    Korthikanti §4.3's extra terms."""
    if wl.mode is not Mode.TRAIN:
        return _inference_activation_bytes(wl)
    m, par = wl.model, wl.parallelism
    s, b, h, t = wl.seq_len / par.cp, wl.micro_batch, m.hidden, par.tp
    per_layer = activation_bytes_per_layer(wl)
    flight = in_flight_microbatches(wl)
    # 1F1B-like schedules hold p - s micro-batches on stage s, the first the most; with uneven
    # stages (workload/spec.py stage_layers) a later, longer stage can hold more layers' worth
    stepped = par.schedule in (PipeSchedule.ONE_F_ONE_B, PipeSchedule.ZB_H1)
    total = per_layer * max(n * (max(1.0, flight - st) if stepped else flight)
                            for st, n in enumerate(_device_layers(wl)))
    if m.dropout:
        total += s * b * h * in_flight_microbatches(wl) / t     # embedding dropout mask, sbhp/t
    if par.pp == 1:
        e = wl.memory.activation_bits / 8
        total += 2 * e * s * b * h / t                         # final norm input + output-layer input
        # (the multi-token prediction modules' layers are in _device_layers' count above)
        total += mtp_activation_bytes(wl) - wl.mtp_modules * per_layer
        # offloaded layers leave the device once their copy is done; one layer's copy is in flight
        # at a time (Transformer Engine's offload context: a layer's tensors go while the next runs)
        total -= per_layer * max(0, wl.memory.offload_layers - 1)
    return total


def offloaded_activation_bytes(wl: Workload) -> float:
    """Activation bytes of one micro-batch kept in host memory (memory.offload_layers x a layer's)."""
    n = wl.memory.offload_layers if wl.mode is Mode.TRAIN and wl.parallelism.pp == 1 else 0
    return n * activation_bytes_per_layer(wl) if n else 0.0


def _inference_activation_bytes(wl: Workload) -> float:
    """Inference keeps no activations for backward: the largest live set is one layer's FFN buffers."""
    m, par = wl.model, wl.parallelism
    tokens = wl.micro_batch * wl.decode.samples if wl.mode is Mode.DECODE else wl.micro_batch * wl.seq_len
    e = wl.dtype.bytes
    gated = 2 if m.activation.gated else 1
    return tokens * e * (2 * m.hidden + (gated + 1) * m.token_ffn / par.tp)


def kv_bits_effective(wl: Workload) -> float:
    """Bits per cached element including group scales/zero points and fp16 outliers (KVQuant §3)."""
    bits = wl.memory.kv_bits
    if bits < 16:
        bits += 32.0 / wl.memory.kv_group_size                     # fp16 scale + fp16 zero per group
    frac = wl.memory.kv_outlier_fraction
    return bits * (1 - frac) + frac * (16 + 32)                    # outliers: fp16 value + int32 index


def kv_cache_bytes_per_token(wl: Workload) -> float:
    """KV bytes per token for the whole model (all layers, all TP ranks), with a sparse-attention
    model's FP8 indexer keys (ModelConfig.index_key_bytes), which the KV precision does not change."""
    m = wl.model
    return m.kv_elements_per_token() * kv_bits_effective(wl) / 8 + m.attention_layers * m.index_key_bytes


def recurrent_state_bytes_per_sequence(wl: Workload) -> float:
    """What one sequence keeps between steps in a model's recurrent layers (all layers, all TP
    ranks): each value head's key_dim x value_dim state at recurrent_state_bits and each convolution
    channel's last recurrent_conv - 1 inputs at the KV cache's width (vLLM's mamba cache; Qwen3-Next,
    Mamba-2). It does not grow with the context."""
    states, conv = wl.model.recurrent_state_elements()
    return states * wl.model.recurrent_state_bits / 8 + conv * wl.dtype.bytes


def recurrent_state_bytes(wl: Workload) -> float:
    """The recurrent layers' states on one device: TP ranks split them by value heads (by sequences
    under DP attention), pipeline stages by layers. A decode step rewrites all of it."""
    m, par = wl.model, wl.parallelism
    if not m.recurrent_layers or wl.mode is Mode.TRAIN:
        return 0.0
    sequences = wl.micro_batch * (wl.decode.samples if wl.mode is Mode.DECODE else 1)
    return sequences * recurrent_state_bytes_per_sequence(wl) / (
        (par.tp if par.attention_dp else min(par.tp, m.recurrent_value_heads)) * par.pp)


def kv_cache_bytes(wl: Workload) -> float:
    """KV cache on one device at the end of generation (prefill: the prompt's cache), with the
    recurrent layers' per-sequence state (recurrent_state_bytes_per_sequence)."""
    if wl.mode is Mode.TRAIN:
        return 0.0
    par, m = wl.parallelism, wl.model
    if wl.mode is Mode.DECODE:
        d = wl.decode
        tokens = wl.micro_batch * (d.context_len + d.samples * d.new_tokens)
        sequences = wl.micro_batch * d.samples
    else:
        tokens = wl.micro_batch * wl.seq_len
        sequences = wl.micro_batch
    # TP ranks split the cache by KV heads, or by sequences under data-parallel attention
    shards = (par.tp if par.attention_dp else min(par.tp, m.kv_cache_heads)) * par.pp * par.cp
    full = tokens * kv_cache_bytes_per_token(wl) / shards
    if m.windowed_layers:   # a windowed layer keeps each sequence's last sliding_window tokens only
        kept = min(tokens, sequences * m.sliding_window)
        full -= m.windowed_layers / m.attention_layers * (tokens - kept) * kv_cache_bytes_per_token(wl) / shards
    full += recurrent_state_bytes(wl)
    if wl.mode is Mode.DECODE and wl.decode.speculative_tokens:
        draft = wl.decode.draft_model
        if draft is not None:                      # the draft model keeps its own cache of the sequences
            full += kv_cache_bytes(replace(wl, model=draft, decode=replace(wl.decode, speculative_tokens=0,
                                                                            draft_model=None)))
        else:
            full *= (m.layers + 1) / m.layers      # the drafter's layer caches its keys and values too
    return full


def logits_bytes(wl: Workload) -> float:
    """Logit and loss buffers on the last stage (Wijmans et al. 2024, CCE: standard vs cut loss)."""
    m, par = wl.model, wl.parallelism
    if wl.mode is Mode.TRAIN:       # the model's head and each multi-token prediction module's
        tokens = wl.micro_batch * wl.seq_len / par.cp * (1 + wl.mtp_modules)
        if wl.memory.loss is Loss.CCE:
            return tokens * 8.0
        # Inductor keeps the bf16 logits, recomputes the rest in backward (own compiled runs, H200);
        # a fused loss keeps only them too, its gradient written over them
        if wl.framework is Framework.COMPILED or wl.memory.loss is Loss.FUSED:
            return tokens * m.vocab / par.tp * wl.dtype.bytes
        return tokens * m.vocab / par.tp * (2 + 4 + 4 + 4)
    tokens = wl.micro_batch * wl.decode.samples if wl.mode is Mode.DECODE else wl.micro_batch
    return tokens * m.vocab / par.tp * (wl.dtype.bytes + 4)


def static_bytes_per_param(wl: Workload, replicas: int | None = None) -> tuple[float, float, float]:
    """(parameter, gradient, optimizer-state) bytes a device keeps per parameter it holds, after
    ZeRO sharding over the ``replicas`` that hold the same parameter (default: the data- and
    context-parallel ranks, dp x cp; dp / ep x cp for a routed expert) (stage 1: optimizer state,
    2: + gradients, 3: + weights)."""
    zero, n = wl.memory.zero_stage, replicas or wl.parallelism.replicas
    e = wl.dtype.bytes
    train = wl.mode is Mode.TRAIN
    grad, opt = e, OPT_STATE_BYTES[wl.optimizer]
    if train and wl.framework is Framework.FUSED and opt:
        # Megatron-LM accumulates and reduces bf16 models' gradients in fp32 (its main_grad buffer);
        # fp16 models keep fp16 gradients and the optimizer an fp32 copy of them besides the master
        # weights. Megatron-LM's distributed-optimizer table (README): bf16 param, fp32 grads 18 B
        # (6 + 12/d distributed), fp16 param, fp16 grads 20 (4 + 16/d), fp32 16 (8 + 8/d)
        grad = wl.grad_bytes
        opt += {DType.FP16: 4.0, DType.FP32: -4.0}.get(wl.dtype, 0.0)      # fp32 weights are their own master
    return (e / (n if zero >= 3 else 1),
            grad / (n if zero >= 2 else 1) if train else 0.0,
            opt / (n if zero >= 1 else 1) if train else 0.0)


def layer_params_per_device(wl: Workload, moe: bool = True) -> float:
    """Parameters of one layer on one device: tensor-parallel shard (MLA's down-projections whole
    on every rank), experts / ep of the experts; ``moe=False``: a dense leading layer."""
    m, par = wl.model, wl.parallelism
    # data-parallel attention holds the whole attention block on every TP rank
    rep = m.mixer_params() if par.attention_dp else m.tp_replicated_params()
    experts = m.expert_params() if moe else 0
    return (m.layer_params(moe=moe) - rep - experts * (1 - 1 / par.ep)) / par.tp + rep


def expert_params_per_device(wl: Workload) -> float:
    """Routed-expert parameters on one device of the first pipeline stage (0 for a dense model)."""
    m, par = wl.model, wl.parallelism
    # (with block_pattern, expert_params is the mean block's)
    mtp = wl.mtp_modules if m.is_moe_layer(m.layers - 1) else 0
    layers = max(_device_layers(wl)) if par.pp > 1 or m.block_pattern else m.moe_layers + mtp
    return layers * m.expert_params() / par.ep / par.tp


def _low_precision_weights_bytes(wl: Workload, device=None) -> float:
    """What a precision recipe adds to (serving: changes in) the parameters' bytes: training under the
    fused framework keeps the quantized layers' linear weights cast once per step, row- and
    column-wise (Transformer Engine's weight cache across micro-batches; one copy for per-tensor
    scales on a ``device`` whose FP8 GEMMs take any layout), instead of the dtype's copy where the
    recipe stores them quantized (Precision.weights_stored_quantized: Megatron's fp8 param gather);
    serving stores them quantized instead of in the dtype (workload/precision.py). Norms and routers
    count as linears."""
    frac = quantized_fraction(wl)
    if not frac:
        return 0.0
    # (ZeRO-3 shards these weights as it shards the dtype's: static_bytes_per_param)
    layers = _params_parts(wl)[0] * frac / (wl.parallelism.replicas if wl.memory.zero_stage >= 3 else 1)
    qw = wl.precision.element_bytes(weight=True)
    if wl.mode is not Mode.TRAIN:
        return layers * (qw - wl.dtype.bytes)
    if wl.framework is not Framework.FUSED:
        return 0.0
    any_layout = device is not None and device.efficiency.fp8_any_layout
    copies = 1.0 if wl.precision.recipe in PER_TENSOR and any_layout else 2.0
    own = wl.dtype.bytes if wl.precision.weights_stored_quantized() else 0.0
    return (copies * qw - own) * layers


def gathered_weight_bytes(wl: Workload) -> float:
    """Bytes of this device's (unsharded) weights a ZeRO all-gather moves: the dtype's, but for the
    quantized layers' weights of a per-tensor FP8 recipe the fused framework stores only quantized,
    which Megatron gathers in FP8 (its fp8 param gather; the transposes are made after)."""
    p = params_per_device(wl, sharded_by_zero=False)
    e = wl.dtype.bytes
    if not (wl.mode is Mode.TRAIN and wl.framework is Framework.FUSED and wl.precision.recipe in PER_TENSOR
            and wl.precision.weights_stored_quantized()):
        return p * e
    quantized = _params_parts(wl)[0] * quantized_fraction(wl)
    return p * e - quantized * (e - wl.precision.element_bytes(weight=True))


def memory_breakdown(wl: Workload, hw=None) -> MemoryBreakdown:
    """Peak memory of the most loaded device. ``hw`` (device or node spec) gives the capacity."""
    par = wl.parallelism
    train = wl.mode is Mode.TRAIN
    p_dev = params_per_device(wl, sharded_by_zero=False)
    p_expert = expert_params_per_device(wl) if par.ep > 1 else 0.0     # sharded over its dp / ep replicas
    params, grads, opt = ((p_dev - p_expert) * b + p_expert * x for b, x in
                          zip(static_bytes_per_param(wl), static_bytes_per_param(wl, par.dp // par.ep * par.cp)))
    if train and wl.optimizer is Optimizer.MUON:
        # Muon's momentum covers the layers' matrices; the embedding and output layer keep AdamW's
        # second moment too (4 B more each), sharded as the rest of the state
        opt += _params_parts(wl)[1] * 4.0 / (par.replicas if wl.memory.zero_stage >= 1 else 1)
    bits = 8 * wl.dtype.bytes
    w_bits = wl.memory.weight_bits_effective(bits)
    if w_bits < bits and not train:    # weight-only quantization: the layers' weights at w_bits (scales included)
        layers, other = _params_parts(wl)
        params = layers * w_bits / 8 + other * wl.dtype.bytes
    device = getattr(hw, "device", hw)
    params += _low_precision_weights_bytes(wl, device)
    capacity = 0.0
    if hw is not None:
        capacity = device.main_memory.capacity_bytes if device.memory else 0.0
    # eager PyTorch's foreach AdamW builds sqrt(exp_avg_sq) as a new fp32 list over this device's
    # parameters during the step (torch/optim/adamw.py _multi_tensor_adamw: torch._foreach_sqrt)
    transient = 0.0
    if (train and wl.framework is not Framework.FUSED and wl.step_kernel is OptimizerKernel.FOREACH
            and wl.optimizer in (Optimizer.ADAM, Optimizer.ADAMW)):
        transient = 4.0 * p_dev / (par.replicas if wl.memory.zero_stage >= 1 else 1)
    return MemoryBreakdown(parameters_bytes=params, gradients_bytes=grads, optimizer_bytes=opt,
                           activations_bytes=activations_bytes(wl), kv_cache_bytes=kv_cache_bytes(wl),
                           logits_bytes=logits_bytes(wl) if par.pp == 1 or not train else 0.0,
                           capacity_bytes=capacity, optimizer_transient_bytes=transient,
                           host_activations_bytes=offloaded_activation_bytes(wl))
