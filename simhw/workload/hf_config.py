"""Read a Hugging Face ``config.json`` into :class:`~simhw.workload.models.ModelConfig` fields.

Keys map one to one where they can (``_HF_MAP``); the activation, norm, position encoding,
multi-head latent attention's head dims, dense first layers and sliding windows are worked out
from the config's family and keys; features simhw does not model are named in a
:class:`~simhw.errors.SimhwWarning`. docs/workloads.md lists what is read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import WorkloadError
from .models import Activation, Norm, Position, Recurrent

_HF_MAP = {"num_hidden_layers": "layers", "n_layer": "layers", "hidden_size": "hidden", "n_embd": "hidden",
           "d_model": "hidden", "num_attention_heads": "heads", "n_head": "heads",
           "num_key_value_heads": "kv_heads", "intermediate_size": "ffn", "ffn_dim": "ffn",
           "n_inner": "ffn", "vocab_size": "vocab", "head_dim": "head_dim",
           "max_position_embeddings": "max_positions", "tie_word_embeddings": "tied_embeddings",
           "num_local_experts": "experts", "num_experts": "experts", "n_routed_experts": "experts",
           "num_experts_per_tok": "experts_per_token", "moe_intermediate_size": "expert_ffn",
           "shared_expert_intermediate_size": "shared_expert_ffn", "first_k_dense_replace": "dense_layers",
           "kv_lora_rank": "kv_lora_rank", "q_lora_rank": "q_lora_rank", "qk_rope_head_dim": "rope_head_dim",
           "v_head_dim": "v_head_dim", "moe_shared_expert_intermediate_size": "shared_expert_ffn",
           "index_topk": "index_topk", "index_n_heads": "index_heads", "index_head_dim": "index_head_dim",
           "num_nextn_predict_layers": "mtp_layers"}


# Hugging Face config keys of architecture features simhw does not model, when each applies, and
# what simhw does instead
_HF_UNMODELLED = (
    ("max_window_layers", lambda cfg, v: bool(cfg.get("use_sliding_window")) and isinstance(v, int)
     and 0 < v < int(cfg.get("num_hidden_layers") or 0),
     "sliding windows on the layers from max_window_layers on are priced as windows on every layer"),
    ("moe_layer_freq", lambda cfg, v: isinstance(v, int) and v > 1,
     "mixture-of-experts layers every moe_layer_freq layers are priced as every layer routing"),
    ("decoder_sparse_step", lambda cfg, v: isinstance(v, int) and v > 1,
     "mixture-of-experts layers every decoder_sparse_step layers are priced as every layer routing"),
    ("layer_types", lambda cfg, v: isinstance(v, list)
     and any(t not in _ATTENTION_KINDS + _RECURRENT_KINDS for t in v),
     "layers of other kinds than sliding_attention, full_attention, linear_attention and mamba in layer_types "
     "are priced as full attention"),
    ("attn_layer_period", lambda cfg, v: isinstance(v, int) and v > 1,
     "Jamba's Mamba-1 layers are priced as attention layers"),
)
_ATTENTION_KINDS = ("sliding_attention", "full_attention", "attention")
_RECURRENT_KINDS = ("linear_attention", "mamba")


def _warn_unmodelled(cfg: Mapping, path: Path) -> None:
    import warnings

    from ..errors import SimhwWarning
    for key, applies, what in _HF_UNMODELLED:
        if applies(cfg, cfg.get(key)):
            warnings.warn(SimhwWarning(f"{path}: {what}."), stacklevel=3)


def _window_fields(cfg: Mapping, arch: str, path: Path) -> dict[str, int]:
    """sliding_window and global_every from a config: layer_types ("sliding_attention" /
    "full_attention", Gemma 3, gpt-oss) when given, else sliding_window_pattern (Gemma 3), else
    Gemma 2's alternation, else every layer (Mistral 7B v0.1); none when use_sliding_window is
    false (Qwen2)."""
    window = cfg.get("sliding_window")
    if not isinstance(window, int) or window <= 0 or cfg.get("use_sliding_window") is False:
        return {}
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        full = [i for i, t in enumerate(types) if t != "sliding_attention"]   # other kinds: as full (warned)
        if len(full) == len(types):
            return {}
        if not full:
            return {"sliding_window": window}
        every = full[0] + 1
        if full != list(range(every - 1, len(types), every)):
            import warnings

            from ..errors import SimhwWarning
            every = max(1, round(len(types) / len(full)))
            warnings.warn(SimhwWarning(f"{path}: layer_types has no regular pattern of full-attention layers; "
                                       f"every {every}th layer is priced as global, the others as windowed."),
                          stacklevel=4)
        return {"sliding_window": window, "global_every": every}
    pattern = cfg.get("sliding_window_pattern")     # Gemma 3's configs before layer_types: 6
    if isinstance(pattern, int) and pattern > 1:
        return {"sliding_window": window, "global_every": pattern}
    return {"sliding_window": window, "global_every": 2 if "gemma2" in arch or "gemma-2" in arch else 0}


def _recurrent_fields(cfg: Mapping, arch: str, path: Path) -> dict[str, Any]:
    """The recurrent mixer of a hybrid config: Qwen3-Next / Qwen3.5's Gated DeltaNet (linear_*
    keys), Granite 4.0-H's Mamba-2 (mamba_* keys), and which layers attend (layer_types, else
    full_attention_interval)."""
    if cfg.get("linear_num_value_heads"):
        out: dict[str, Any] = {
            "recurrent": Recurrent.GATED_DELTANET, "recurrent_key_heads": cfg.get("linear_num_key_heads"),
            "recurrent_key_dim": cfg.get("linear_key_head_dim"), "recurrent_value_heads": cfg.get("linear_num_value_heads"),
            "recurrent_value_dim": cfg.get("linear_value_head_dim"), "recurrent_conv": cfg.get("linear_conv_kernel_dim", 4),
            # Qwen3-Next's full-attention layers gate their output; Qwen3.5 says so in attn_output_gate
            "attention_gate": bool(cfg.get("attn_output_gate", "qwen3_next" in arch or "qwen3_5" in arch))}
    elif isinstance(cfg.get("hybrid_override_pattern"), str) and cfg.get("mamba_num_heads"):
        # Nemotron-H: one sublayer per block (M Mamba-2, * attention, - MLP, E mixture of experts)
        heads = int(cfg["mamba_num_heads"])
        pattern = cfg["hybrid_override_pattern"]
        return {"recurrent": Recurrent.MAMBA2, "block_pattern": pattern, "layers": len(pattern), "dense_layers": 0,
                "recurrent_key_heads": cfg.get("n_groups") or cfg.get("mamba_num_groups") or 1,
                "recurrent_key_dim": cfg.get("ssm_state_size"), "recurrent_value_heads": heads,
                "recurrent_value_dim": cfg.get("mamba_head_dim")
                or int(cfg.get("expand", 2)) * int(cfg.get("hidden_size") or 0) // heads,
                "recurrent_conv": cfg.get("conv_kernel", 4), "recurrent_chunk": cfg.get("chunk_size", 0) or 0}
    elif cfg.get("mamba_n_heads") and isinstance(cfg.get("layer_types"), list):
        inner = int(cfg.get("mamba_expand", 2)) * int(cfg.get("hidden_size") or 0)
        heads = int(cfg["mamba_n_heads"])
        out = {"recurrent": Recurrent.MAMBA2, "recurrent_key_heads": cfg.get("mamba_n_groups", 1),
               "recurrent_key_dim": cfg.get("mamba_d_state"), "recurrent_value_heads": heads,
               "recurrent_value_dim": cfg.get("mamba_d_head") or inner // heads,
               "recurrent_conv": cfg.get("mamba_d_conv", 4), "recurrent_chunk": cfg.get("mamba_chunk_size", 0) or 0}
    else:
        kinds = set(cfg.get("layer_types") or ()) & set(_RECURRENT_KINDS) if isinstance(cfg.get("layer_types"), list) \
            else ()
        if kinds:
            import warnings

            from ..errors import SimhwWarning
            warnings.warn(SimhwWarning(f"{path}: layer_types names {' and '.join(sorted(kinds))} layers but the config "
                                       f"has no linear_num_value_heads or mamba_n_heads to size them; they are "
                                       f"priced as full attention."), stacklevel=4)
        return {}
    if str(cfg.get("mamba_ssm_dtype", "float32")) in ("bfloat16", "float16"):
        out["recurrent_state_bits"] = 16
    types = cfg.get("layer_types")
    layers = int(cfg.get("num_hidden_layers") or 0)
    if isinstance(types, list) and types:
        attend, layers = [i for i, t in enumerate(types) if t not in _RECURRENT_KINDS], len(types)
    else:
        every = int(cfg.get("full_attention_interval") or 0)
        attend = list(range(every - 1, layers, every)) if every > 0 else []
    if attend:
        every = attend[1] - attend[0] if len(attend) > 1 else layers
        offset = attend[0]
        if offset >= every or attend != list(range(offset, layers, every)):
            import warnings

            from ..errors import SimhwWarning
            every = max(1, round(layers / len(attend)))
            offset = every - 1
            warnings.warn(SimhwWarning(f"{path}: the attention layers among the recurrent ones have no regular "
                                       f"pattern; every {every}th layer is priced as attention."), stacklevel=4)
        out.update(attention_every=every, attention_offset=offset)
    return out


def hf_config_fields(path: Path, where: str) -> dict[str, Any]:
    """Map a Hugging Face ``config.json`` onto :class:`ModelConfig` fields."""
    if not path.exists():
        raise WorkloadError(f"{where}: {path} not found.")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{where}: {path} is not valid JSON ({exc.__class__.__name__}).") from None
    if not isinstance(cfg, Mapping):
        raise WorkloadError(f"{where}: {path} is not a config object.")
    text = cfg.get("text_config")
    if isinstance(text, Mapping) and "hidden_size" not in cfg:
        # multimodal checkpoints (Gemma 3, Llama 4, Kimi K2.5, Qwen-VL) nest their language model:
        # price that, its own keys over the wrapper's (the vision tower is not modelled)
        cfg = {**{k: v for k, v in cfg.items() if k != "text_config"}, **text}
    out: dict[str, Any] = {"name": str(cfg.get("_name_or_path") or cfg.get("model_type") or path.stem)}
    for key, target in _HF_MAP.items():
        if key in cfg and cfg[key] is not None and target not in out:
            out[target] = cfg[key]
    arch = " ".join(cfg.get("architectures") or []).lower() + " " + str(cfg.get("model_type", "")).lower()
    # SiLU MLPs in Hugging Face decoders are gated (LLaMA's SwiGLU and its descendants: DeepSeek,
    # Kimi, InternLM, Yi, OLMo, ...); GELU ones only in the families named. A config that names no
    # activation has its family's default (transformers' config classes: SiLU for DeepSeek / Kimi)
    silu_family = any(k in arch for k in ("deepseek", "kimi"))
    act = str(cfg.get("mlp_hidden_act") or cfg.get("hidden_act") or cfg.get("activation_function") or cfg.get("hidden_activation")
              or ("silu" if silu_family else "gelu")).lower()
    gated = any(k in arch for k in ("llama", "mistral", "qwen", "gemma", "mixtral", "phi3", "deepseek", "kimi")) \
        or "silu" in act or "swish" in act
    _warn_unmodelled(cfg, path)
    if "silu" in act or "swish" in act:
        out["activation"] = Activation.SWIGLU if gated else Activation.GELU
    elif "gelu" in act:
        out["activation"] = Activation.GEGLU if gated else Activation.GELU
    elif "relu" in act:
        out["activation"] = Activation.RELU
    out["norm"] = Norm.RMSNORM if "rms_norm_eps" in cfg else Norm.LAYERNORM
    out["position"] = Position.ROPE if ("rope_theta" in cfg or "rotary" in json.dumps(cfg)) else \
        (Position.ALIBI if "alibi" in arch or "bloom" in arch else Position.LEARNED)
    if cfg.get("kv_lora_rank"):   # MLA: the query/key head is its no-RoPE part plus the decoupled RoPE dims
        missing = [k for k in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim") if not cfg.get(k)]
        if missing:
            raise WorkloadError(f"{where}: {path} sets kv_lora_rank (multi-head latent attention) but not "
                                f"{', '.join(missing)}; give its head dimensions as positive integers.")
        out["head_dim"] = int(cfg["qk_nope_head_dim"]) + int(cfg["qk_rope_head_dim"])
    if not out.get("experts"):
        out.pop("dense_layers", None)   # first_k_dense_replace means nothing without routed experts
    out.update(_window_fields(cfg, arch, path))
    out.update(_recurrent_fields(cfg, arch, path))
    if cfg.get("n_shared_experts") and "shared_expert_ffn" not in out:   # DeepSeekMoE: n x the expert width
        out["shared_expert_ffn"] = int(cfg["n_shared_experts"]) * int(cfg.get("moe_intermediate_size") or 0)
    if "ffn" not in out and "hidden" in out:
        out["ffn"] = 4 * int(out["hidden"])
    out["bias"] = bool(cfg.get("attention_bias", cfg.get("use_bias", cfg.get("bias", not gated))))
    out["causal"] = "bert" not in arch
    out["tied_embeddings"] = bool(out.get("tied_embeddings", False))
    return out
