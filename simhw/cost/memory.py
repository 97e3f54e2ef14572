"""Memory per device: parameters, gradients, optimizer state, activations, KV cache, logits.

Formulas:
- Activations per layer: Korthikanti et al. 2022 (arXiv 2205.05198) §4.1 and Table 2, generalised
  to grouped-query attention, gated FFNs and models without dropout by keeping each term of the
  paper's breakdown (QKV input 2sbh, Q 2sbh, K and V 2sb·kv_dim each, output-projection input
  2sbh, dropout masks sbh, FFN input 2sbh, activation input 2sb·ffn, second linear input
  2sb·ffn, norms 4sbh, scores 5as²b). For GPT configs it is exactly sbh(34 + 5as/h)
  (cost/saved_tensors.py, with the experts' routed copies and the recompute settings).
- Pipeline: the first 1F1B stage holds p micro-batches of L/p layers (Table 2 note, Eq. 5);
  interleaving multiplies by 1 + (p-1)/(pm) (§4.2.3); extra terms of §4.3. In training each pipeline
  device is costed on its own, the output layer's with its logits (cost/stages.py).
- Parameters / gradients / optimizer: mixed-precision Adam keeps 2 + 2 + 12 bytes per parameter
  (eager / compiled PyTorch); Megatron (framework: fused) keeps a bf16 model's gradients in fp32,
  2 + 4 + 12 (its README's distributed-optimizer table: 18, or 6 + 12/d distributed),
  and ZeRO stages 1-3 shard optimizer, gradients, parameters over data parallelism (Rajbhandari
  et al. 2020, §5).
- KV cache (cost/kv_cache.py): 2 · layers · kv_heads · head_dim elements per token at the effective bit width
  including quantisation scales and fp16 outliers (KVQuant, Hooper et al. 2024, §3); multi-head
  latent attention caches layers · (kv_lora_rank + rope_head_dim), whole on every TP rank
  (DeepSeek-V2, arXiv 2405.04434, §2.1.2 and Table 1); sliding-window layers keep each
  sequence's last window of tokens (Mistral 7B, arXiv 2310.06825, §2 rolling buffer cache).
- Logits and loss: standard cross-entropy materialises the bf16 logits, their fp32 upcast, the
  fp32 log-softmax and its fp32 gradient (14 B per token per vocabulary entry); CCE (Wijmans et al.
  2024) keeps only per-token log-sum-exp and loss (8 B per token).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..spec.model import DType
from ..workload.precision import PER_TENSOR, quantized_fraction
from ..workload.spec import Framework, Loss, Mode, Optimizer, OptimizerKernel, PipeSchedule, Workload
from .kv_cache import (kv_bits_effective, kv_cache_bytes, kv_cache_bytes_per_token,  # noqa: F401  (re-exported)
                       recurrent_state_bytes, recurrent_state_bytes_per_sequence)
from .saved_tensors import activation_bytes_per_layer, saved_tensor_bytes  # noqa: F401  (re-exported)
from .stages import (device_activations, device_layer_counts, device_params, drafter_params,  # noqa: F401
                     fullest_device, in_flight_microbatches,
                     layer_params_per_device, mtp_activation_bytes, mtp_projection_params, piece_activation_bytes)

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
    """Parameters held by the most loaded device: with a pipeline, the device whose layers and
    pieces (embedding, output layer, MTP modules, a serving drafter) weigh most (cost/stages.py
    fullest_device); its data-parallel collectives and optimizer step are the pipeline's longest."""
    layers, other = _params_parts(wl)
    total = layers + other
    if sharded_by_zero and wl.memory.zero_stage >= 3:
        total /= wl.parallelism.replicas
    return total


def _params_parts(wl: Workload, device: int | None = None) -> tuple[float, float]:
    """(transformer-layer parameters, embedding and output-layer parameters) of the most loaded
    device (params_per_device), or of pipeline ``device`` (cost/stages.py device_params); a
    drafter and multi-token prediction modules (one layer and a 2h x h projection each, on their
    device) count as layers."""
    return device_params(wl, fullest_device(wl) if device is None else device)


def activations_bytes(wl: Workload, device: int | None = None) -> float:
    """Peak activation bytes on the most loaded pipeline stage (the first, with equal stages), with
    Korthikanti §4.3's extra terms; with ``device``, on that pipeline device (training, pp > 1)."""
    if wl.mode is not Mode.TRAIN:
        return _inference_activation_bytes(wl)
    if device is not None and wl.parallelism.pp > 1:
        return device_activations(wl, device)
    m, par = wl.model, wl.parallelism
    s, b, h, t = wl.seq_len / par.cp, wl.micro_batch, m.hidden, par.tp
    per_layer = activation_bytes_per_layer(wl)
    flight = in_flight_microbatches(wl)
    # 1F1B-like schedules hold p - s micro-batches on stage s, the first the most; with uneven
    # stages (workload/spec.py stage_layers) a later, longer stage can hold more layers' worth
    stepped = par.schedule in (PipeSchedule.ONE_F_ONE_B, PipeSchedule.ZB_H1)
    total = per_layer * max(n * (max(1.0, flight - st) if stepped else flight)
                            for st, n in enumerate(device_layer_counts(wl)))
    if m.dropout:
        total += s * b * h * in_flight_microbatches(wl) / t     # embedding dropout mask, sbhp/t
    if par.pp == 1:
        # the output layers' inputs (final norm, output projection) and the MTP modules' activations
        # (less their layers, counted in device_layer_counts above)
        total += piece_activation_bytes(wl, 0) - wl.mtp_modules * per_layer
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


def expert_params_per_device(wl: Workload, device: int | None = None) -> float:
    """Routed-expert parameters on the most loaded device (params_per_device; 0 for a dense model),
    or on pipeline ``device``."""
    m, par = wl.model, wl.parallelism
    if par.pp > 1 and m.moe and not m.block_pattern:
        if device is None:
            device = fullest_device(wl)
        held = wl.device_layers()[device]
        moe = sum(1 for i in held if m.is_moe_layer(i))
        if device == wl.piece_devices()[2] and m.is_moe_layer(m.layers - 1):
            moe += wl.mtp_modules
        return moe * m.expert_params() / par.ep / par.tp
    # (with block_pattern, expert_params is the mean block's)
    mtp = wl.mtp_modules if m.is_moe_layer(m.layers - 1) else 0
    layers = max(device_layer_counts(wl)) if par.pp > 1 or m.block_pattern else m.moe_layers + mtp
    return layers * m.expert_params() / par.ep / par.tp


def _low_precision_weights_bytes(wl: Workload, device=None, stage: int | None = None) -> float:
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
    layers = _params_parts(wl, stage)[0] * frac / (wl.parallelism.replicas if wl.memory.zero_stage >= 3 else 1)
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
    """Peak memory of the most loaded device. ``hw`` (device or node spec) gives the capacity.

    With a training pipeline, each device is costed on its own (cost/stages.py: its layers, the
    embedding, output layer and MTP modules where they run, its micro-batches in flight, and the
    logits on the output layer's device, which with few micro-batches in flight can be the fullest:
    a standard loss keeps 14 bytes per vocabulary entry) and the fullest is reported."""
    return max(device_memory_breakdowns(wl, hw), key=lambda b: b.peak_bytes)


def device_memory_breakdowns(wl: Workload, hw=None) -> tuple[MemoryBreakdown, ...]:
    """memory_breakdown of each pipeline device (one entry without a pipeline): training and
    serving pipelines alike hold their own layers and pieces (cost/stages.py); serving's KV cache
    follows each device's attention layers (cost/kv_cache.py)."""
    if wl.parallelism.pp == 1:
        return (_breakdown(wl, hw, None),)
    return tuple(_breakdown(wl, hw, d) for d in range(wl.parallelism.pp))


def _breakdown(wl: Workload, hw, stage: int | None) -> MemoryBreakdown:
    """memory_breakdown of the one device (``stage`` None: no pipeline), or of pipeline device
    ``stage``, with its logits if it holds the output layer."""
    par = wl.parallelism
    train = wl.mode is Mode.TRAIN
    p_dev = params_per_device(wl, sharded_by_zero=False) if stage is None else sum(_params_parts(wl, stage))
    p_expert = expert_params_per_device(wl, stage) if par.ep > 1 else 0.0     # sharded over its dp / ep replicas
    params, grads, opt = ((p_dev - p_expert) * b + p_expert * x for b, x in
                          zip(static_bytes_per_param(wl), static_bytes_per_param(wl, par.dp // par.ep * par.cp)))
    if train and wl.optimizer is Optimizer.MUON:
        # Muon's momentum covers the layers' matrices; the embedding and output layer keep AdamW's
        # second moment too (4 B more each), sharded as the rest of the state
        opt += _params_parts(wl, stage)[1] * 4.0 / (par.replicas if wl.memory.zero_stage >= 1 else 1)
    bits = 8 * wl.dtype.bytes
    w_bits = wl.memory.weight_bits_effective(bits)
    if w_bits < bits and not train:    # weight-only quantization: the layers' weights at w_bits (scales included)
        layers, other = _params_parts(wl, stage)
        params = layers * w_bits / 8 + other * wl.dtype.bytes
    device = getattr(hw, "device", hw)
    params += _low_precision_weights_bytes(wl, device, stage)
    capacity = 0.0
    if hw is not None:
        capacity = device.main_memory.capacity_bytes if device.memory else 0.0
    # eager PyTorch's foreach AdamW builds sqrt(exp_avg_sq) as a new fp32 list over this device's
    # parameters during the step (torch/optim/adamw.py _multi_tensor_adamw: torch._foreach_sqrt)
    transient = 0.0
    if (train and wl.framework is not Framework.FUSED and wl.step_kernel is OptimizerKernel.FOREACH
            and wl.optimizer in (Optimizer.ADAM, Optimizer.ADAMW)):
        transient = 4.0 * p_dev / (par.replicas if wl.memory.zero_stage >= 1 else 1)
    head = stage is None or stage == wl.piece_devices()[1]
    return MemoryBreakdown(parameters_bytes=params, gradients_bytes=grads, optimizer_bytes=opt,
                           activations_bytes=activations_bytes(wl, stage), kv_cache_bytes=kv_cache_bytes(wl, stage),
                           logits_bytes=logits_bytes(wl) if head else 0.0,
                           capacity_bytes=capacity, optimizer_transient_bytes=transient,
                           host_activations_bytes=offloaded_activation_bytes(wl))
