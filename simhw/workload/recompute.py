"""Module-wise selective recompute: what ``memory.recompute: selective`` with ``recompute_modules``
re-runs in backward, and which saved tensors it drops (cost/memory.py saved_tensor_bytes).

Megatron-LM's ``--recompute-granularity selective --recompute-modules`` (transformer_config.py;
the fine-grained recomputation of the Megatron Core MoE report, arXiv 2603.07685 §4) checkpoints
pieces of a layer rather than all of it: each piece keeps its input and drops what it would have
kept for backward, and its forward runs again just before the layer's backward. The pieces:

- ``core_attn``: QK^T, softmax and attention over V (Korthikanti et al. 2022 §5; the default).
  Without FlashAttention this drops the s x s scores; with it, the kernel keeps only its inputs,
  output and log-sum-exp, so nothing of note is dropped and the kernel's forward runs again.
- ``layernorm``: a norm whose output a separate linear reads. Transformer Engine fuses the norm
  into the next linear (LayerNormLinear) in dense attention and dense FFNs, where the linear keeps
  the norm's output anyway; Megatron's layer specs keep the norm separate before multi-head latent
  attention's down projections and before a mixture of experts' router (TENorm), and so do eager
  and compiled PyTorch everywhere. Dropping that output costs the norm again.
- ``mlp`` / ``moe``: the whole dense FFN / mixture-of-experts block (router, dispatch, experts,
  combine, shared experts, and the block's tensor-parallel collective): keeps the block's input.
- ``moe_act``: the routed experts' activation function: drops its output (the down projection's
  input) and runs it again from the kept up-projection output.
- ``shared_experts``: the shared experts' FFN.
- ``mla_up_proj``: multi-head latent attention's up projections: keeps the latents, drops the
  per-head Q, K and V and runs q_up / kv_up again.

A module that the model does not have is an error rather than a silent no-op.

``recompute: op`` is torchtitan's per-op selective activation checkpointing (its default ``mode:
selective, selective_ac_option: op``; torchtitan/distributed/activation_checkpoint.py), a
torch.utils.checkpoint policy over each block: the outputs of the attention kernel, of
reduce-scatters and of every odd-numbered matmul in forward order are saved (wq, wv, w1, w2 of a
Llama block: the block's matmul counter restarts in each block), all else is recomputed in
backward from the block's input, up to the last tensor backward needs (early stop): the norms,
RoPE, wk, wo, w3 (or, in a non-gated FFN, nothing past the activation) and the elementwise ops.
It runs in eager or compiled PyTorch, on dense blocks with standard attention.

``recompute_layers: N`` with ``recompute: full`` recomputes only the first N layers of each model
chunk (a pipeline stage, or each of its interleaved chunks) and keeps everything of the others:
Megatron-LM's ``--recompute-method block --recompute-num-layers N``, which trades the two ends of
the memory / time range continuously.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import WorkloadError
from .graph import Collective, Op, OpKind
from .models import ModelConfig
from .opbuild import COLL_CODE, gemm
from .spec import Framework, MemoryOptions, Mode, Parallelism, Recompute, RecomputeModule, Workload, stage_layers

M = RecomputeModule


def parse_modules(value: Any, where: str) -> frozenset:
    """``recompute_modules`` from YAML: a list of module names, or one string of them joined by
    ``+`` (as ``--vary`` takes it); an empty list names none."""
    items = [v for v in value.split("+") if v.strip()] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise WorkloadError(f"{where}: expected a list of modules (or one string joined by +), got {value!r}; "
                            f"choose from: {', '.join(m.value for m in M)}.")
    out = set()
    for item in items:
        try:
            out.add(M(str(item).strip().lower()))
        except ValueError:
            raise WorkloadError(f"{where}: {item!r} is not a recompute module; choose from: "
                                f"{', '.join(m.value for m in M)}.") from None
    return frozenset(out)


def check_modules(memory: MemoryOptions, model: ModelConfig, framework: Framework, mode: Mode, w: str) -> None:
    """A one-line WorkloadError for recompute_modules that cannot apply: with a recompute other
    than selective, outside training, or naming a piece the model does not have."""
    mods = memory.recompute_modules
    if not mods:
        return
    p = f"{w}memory.recompute_modules"
    if memory.recompute is not Recompute.SELECTIVE:
        raise WorkloadError(f"{p}: modules are what a selective recompute re-runs, but memory.recompute is "
                            f"{memory.recompute.value}; set recompute: selective or drop recompute_modules.")
    if mode is not Mode.TRAIN:
        raise WorkloadError(f"{p}: recompute applies to training (mode: train), not {mode.value}; drop it.")
    dense_ffn = model.ffn_layers > model.moe_layers
    missing = {M.MOE: not model.moe, M.MOE_ACT: not model.moe, M.SHARED_EXPERTS: not model.shared_expert_ffn,
               M.MLA_UP_PROJ: not model.mla, M.MLP: not dense_ffn, M.CORE_ATTN: not model.attention_layers,
               M.LAYERNORM: not _separate_norms(model, framework)}
    for mod in sorted(mods, key=lambda m: m.value):
        if missing[mod]:
            raise WorkloadError(f"{p}: {mod.value} does not apply to {model.name}, which has no {_WHAT[mod]}; "
                                f"drop it from the list.")


_WHAT = {M.MOE: "mixture of experts", M.MOE_ACT: "mixture of experts", M.SHARED_EXPERTS: "shared experts",
         M.MLA_UP_PROJ: "multi-head latent attention", M.MLP: "dense FFN layer", M.CORE_ATTN: "attention layer",
         M.LAYERNORM: "norm outside a fused LayerNormLinear (framework fused: only before multi-head latent "
                      "attention and a mixture of experts)"}


def _separate_norms(model: ModelConfig, framework: Framework) -> bool:
    return framework is not Framework.FUSED or model.mla or model.moe


def check_op(memory: MemoryOptions, model: ModelConfig, framework: Framework, w: str) -> None:
    """A one-line WorkloadError where per-op checkpointing (torchtitan's policy) does not apply."""
    if memory.recompute is not Recompute.OP:
        return
    if framework is Framework.FUSED:
        raise WorkloadError(f"{w}memory.recompute: op is torchtitan's per-op checkpoint policy over eager or compiled "
                            f"PyTorch (framework: eager or compiled); Megatron-style runs use selective with "
                            f"recompute_modules, or full.")
    if model.moe or model.mla or model.recurrent_layers or model.attention_gate or model.block_pattern:
        raise WorkloadError(f"{w}memory.recompute: op (torchtitan's per-op policy) is modelled for dense blocks with "
                            f"standard attention; {model.name} has experts, latent, gated or recurrent mixers. Use "
                            f"selective with recompute_modules, or full.")


def op_saved_elements(wl: Workload) -> dict[str, float]:
    """What per-op checkpointing keeps of one block, per token on one TP rank, by saved-tensor class
    (cost/memory.py): the input (``input``), wq's and wv's outputs (``qkv``), the attention output
    and its fp32 log-sum-exp (``attn_out``, the last in elements of the dtype), w1's output
    (``mlp_act``) and, in a gated FFN, w2's (``mlp_mid``)."""
    m, par = wl.model, wl.parallelism
    t, rep = par.tp, (par.tp if par.sp else 1)
    heads, kv_heads = m.heads / t, max(1, m.kv_heads // t)
    q_dim, kv_dim = heads * m.head_dim, kv_heads * m.head_dim
    e = wl.memory.activation_bits / 8
    return {"input": m.hidden / rep, "qkv": q_dim + kv_dim, "attn_out": q_dim + 4 * heads / e,
            "mlp_act": m.ffn / t, "mlp_mid": m.hidden if m.activation.gated else 0.0}


def op_recompute_ops(wl: Workload, layer: int, ops: list[Op]) -> list[Op]:
    """The forward ops per-op checkpointing runs again for ``layer`` (module docstring): every op
    before the FFN's down projection except the saved ones (attention, reduce-scatters, wq / wv /
    w1), with wk and, in a gated FFN, w3 as GEMMs of their own."""
    out = []
    for op in ops:
        b = op.name.rsplit(".", 1)[0]
        if b == "mlp_down":
            break
        if b == "attn" or (op.kind is OpKind.COLLECTIVE and op.shape.get("collective") == COLL_CODE[
                Collective.REDUCE_SCATTER]):
            continue
        if b == "qkv":      # wk: the second matmul
            kv = op.shape["n"] * wl.model.kv_dim / (wl.model.q_dim + 2 * wl.model.kv_dim)
            out.append(replace(gemm(f"qkv_k.{layer}", layer, op.phase, op.dtype, op.shape["m"], op.shape["k"], kv),
                               count=op.count))
        elif b == "mlp_up":
            if wl.model.activation.gated:   # w3: the sixth
                out.append(replace(gemm(f"mlp_up_w3.{layer}", layer, op.phase, op.dtype, op.shape["m"],
                                        op.shape["k"], op.shape["n"] / 2), count=op.count))
        else:
            out.append(op)
    return out


def chunk_size(layers: int, par: Parallelism) -> int:
    """Layers in each model chunk of ``layers`` under ``par``: a pipeline stage's, or one of its
    interleaved chunks (the largest's where they are uneven: workload/spec.py device_layers)."""
    return max(stage_layers(layers, par.pp * par.interleave))


def block_recomputed(wl: Workload, layer: int) -> bool:
    """Whether full recompute re-runs ``layer``: every layer, or with recompute_layers N the first N
    of its chunk."""
    n = wl.memory.recompute_layers
    if not n:
        return True
    start = max(s for s in wl.chunk_starts() if s <= layer)
    return layer - start < n


def block_fraction(wl: Workload) -> float:
    """The share of layers a full recompute re-runs."""
    n = wl.memory.recompute_layers
    return 1.0 if not n else min(1.0, n / chunk_size(wl.model.layers, wl.parallelism))


def check_layers(memory: MemoryOptions, wl_layers_per_chunk: int, w: str) -> None:
    """A one-line WorkloadError for recompute_layers without full recompute or beyond a chunk."""
    n = memory.recompute_layers
    if not n:
        return
    p = f"{w}memory.recompute_layers"
    if memory.recompute is not Recompute.FULL:
        raise WorkloadError(f"{p}: {n} layers of each chunk are fully recomputed, which needs recompute: full "
                            f"(memory.recompute is {memory.recompute.value}); set it or drop recompute_layers.")
    if n > wl_layers_per_chunk:
        raise WorkloadError(f"{p}: {n} is more than the {wl_layers_per_chunk} layers of each model chunk (layers / "
                            f"(pp x interleave)); use 1 to {wl_layers_per_chunk}, or drop it to recompute every layer.")


def check_offload(memory: MemoryOptions, layers: int, mode: Mode, par, w: str) -> None:
    """A one-line WorkloadError for offload_layers outside training, with a pipeline, or not below the
    layer count (Megatron: CPU offloading does not support pipeline parallelism, and Transformer
    Engine's offload context needs at least one layer kept on the device)."""
    n = memory.offload_layers
    if not n:
        return
    p = f"{w}memory.offload_layers"
    if mode is not Mode.TRAIN:
        raise WorkloadError(f"{p}: activations are offloaded between forward and backward, which only training "
                            f"has (mode is {mode.value}); drop offload_layers.")
    if par.pp > 1:
        raise WorkloadError(f"{p}: Megatron's CPU activation offloading does not run with pipeline parallelism "
                            f"(parallelism.pp is {par.pp}); use pp: 1 or drop offload_layers.")
    if n >= layers:
        raise WorkloadError(f"{p}: {n} is not below the model's {layers} layers; offload 1 to {layers - 1} "
                            f"(the last layer's activations are used at once).")


def norm_dropped(wl: Workload, layer: int, ffn: bool, mods: frozenset) -> bool:
    """Whether ``layernorm`` among ``mods`` drops the output of ``layer``'s attention norm
    (``ffn`` False) or FFN norm: the norm runs as its own kernel there (module docstring)."""
    if M.LAYERNORM not in mods:
        return False
    if wl.framework is not Framework.FUSED:
        return True
    m = wl.model
    return m.is_moe_layer(layer) if ffn else m.mla and m.has_mixer(layer) and m.is_attention(layer)


def norm_dropped_fraction(wl: Workload, ffn: bool, mods: frozenset) -> float:
    """The share of the model's layers whose attention (or FFN) norm output ``mods`` drop."""
    if M.LAYERNORM not in mods:
        return 0.0
    m = wl.model
    return sum(norm_dropped(wl, i, ffn, mods) for i in range(m.layers)) / m.layers


def recompute_ops(wl: Workload, layer: int, ops: list[Op]) -> list[Op]:
    """The forward ops of ``layer`` (``ops``, in order) that its selective recompute runs again."""
    mods = wl.memory.recomputed()
    base = [op.name.rsplit(".", 1)[0] for op in ops]
    ffn = _ffn_block(base)
    moe = wl.model.is_moe_layer(layer)
    keep = []
    for j, (op, b) in enumerate(zip(ops, base)):
        core = M.CORE_ATTN in mods and b == "attn"
        norm = (b == "attn_norm" and norm_dropped(wl, layer, False, mods)) or \
               (b == "mlp_norm" and norm_dropped(wl, layer, True, mods))
        block = j in ffn and ((M.MOE in mods and moe) or (M.MLP in mods and not moe))
        act = M.MOE_ACT in mods and moe and b == "mlp_act"
        shared = M.SHARED_EXPERTS in mods and moe and b.startswith("moe_shared")
        mla = M.MLA_UP_PROJ in mods and b in ("q_up", "kv_up", "rope")
        if core or norm or block or act or shared or mla:
            keep.append(op)
    return keep


def _ffn_block(base: list[str]) -> set[int]:
    """Indices of the FFN block's ops: after the FFN norm, up to the residual add."""
    if "mlp_norm" not in base:
        return set()
    start = base.index("mlp_norm") + 1
    end = base.index("residual2") if "residual2" in base else len(base)
    return set(range(start, end))
