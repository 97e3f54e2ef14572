"""Consistency checks of a :class:`ModelConfig` read from a workload or a Hugging Face config
(workload/from_yaml.py): each failure is a one-line error naming the field and what is allowed."""
from __future__ import annotations

from ..errors import WorkloadError
from .models import ModelConfig, Recurrent


def check_model(model: ModelConfig, w: str) -> None:
    """A one-line WorkloadError (``w`` names the file) for a model whose fields do not make one:
    experts, attention heads, windows, multi-head latent and sparse attention, recurrent mixers."""
    if model.experts and not 1 <= model.experts_per_token <= model.experts:
        raise WorkloadError(f"{w}model.experts_per_token: {model.experts_per_token} must be between 1 and "
                            f"experts = {model.experts} for a mixture-of-experts model.")
    if model.shared_expert_ffn and not model.experts:
        raise WorkloadError(f"{w}model.shared_expert_ffn: shared experts belong to a mixture of experts; set "
                            f"experts and experts_per_token, or drop shared_expert_ffn.")
    if model.heads % model.kv_heads:
        raise WorkloadError(f"{w}model.kv_heads: {model.kv_heads} does not divide heads = {model.heads}.")
    if model.dense_layers and not (model.moe and model.dense_layers < model.layers):
        raise WorkloadError(f"{w}model.dense_layers: {model.dense_layers} dense leading layers need a mixture of "
                            f"experts with more layers than that (layers = {model.layers}, experts = {model.experts}).")
    if model.global_every and not model.sliding_window:
        raise WorkloadError(f"{w}model.global_every: {model.global_every} says which layers attend globally among "
                            f"sliding-window ones; set sliding_window (tokens) too, or drop global_every.")
    if (model.q_lora_rank or model.rope_head_dim) and not model.mla:
        raise WorkloadError(f"{w}model.kv_lora_rank: q_lora_rank and rope_head_dim describe multi-head latent "
                            f"attention, which needs kv_lora_rank > 0; set it or drop them.")
    _check_recurrent(model, w)
    if model.sparse and not (model.mla and model.index_heads and model.index_head_dim):
        raise WorkloadError(f"{w}model.index_topk: DeepSeek sparse attention ({model.index_topk} keys per query) runs "
                            f"on multi-head latent attention and its indexer; it needs kv_lora_rank, index_heads and "
                            f"index_head_dim > 0.")
    if (model.index_heads or model.index_head_dim) and not model.sparse:
        raise WorkloadError(f"{w}model.index_heads: index_heads and index_head_dim size a sparse-attention indexer, "
                            f"which needs index_topk > 0 (keys per query); set it or drop them.")
    if model.mla and not 0 < model.rope_head_dim < model.head_dim:
        raise WorkloadError(f"{w}model.rope_head_dim: {model.rope_head_dim} must be positive and below head_dim = "
                            f"{model.head_dim} (the query/key head is qk_nope_head_dim + rope_head_dim) for "
                            f"multi-head latent attention.")


def _check_recurrent(model: ModelConfig, w: str) -> None:
    """A recurrent mixer needs its head sizes; attention_every / offset must name layers; a
    block_pattern names every layer with M, *, - or E."""
    pattern = model.block_pattern
    if pattern:
        if not isinstance(pattern, str) or len(pattern) != model.layers or set(pattern) - set("M*-E"):
            raise WorkloadError(f"{w}model.block_pattern: {pattern!r} must give one of M (recurrent mixer), * "
                                f"(attention), - (dense FFN), E (mixture of experts) for each of the {model.layers} layers.")
        if model.attention_every or model.dense_layers:
            raise WorkloadError(f"{w}model.block_pattern: it names every layer's kind, so attention_every and "
                                f"dense_layers do not apply; drop them.")
        if "M" in pattern and model.recurrent is Recurrent.NONE or "E" in pattern and not model.moe:
            raise WorkloadError(f"{w}model.block_pattern: M blocks need recurrent (mamba2 or gated_deltanet) and E "
                                f"blocks need experts; set them or change the pattern.")
    if model.recurrent is Recurrent.NONE:
        if model.attention_every:
            raise WorkloadError(f"{w}model.attention_every: {model.attention_every} says which layers attend among "
                                f"recurrent ones; set recurrent (gated_deltanet or mamba2) too, or drop it.")
        return
    for key in ("recurrent_key_heads", "recurrent_key_dim", "recurrent_value_heads", "recurrent_value_dim"):
        if getattr(model, key) <= 0:
            raise WorkloadError(f"{w}model.{key}: missing; a {model.recurrent.value} mixer needs recurrent_key_heads, "
                                f"recurrent_key_dim, recurrent_value_heads and recurrent_value_dim as positive integers.")
    if model.recurrent_value_heads % model.recurrent_key_heads:
        raise WorkloadError(f"{w}model.recurrent_key_heads: {model.recurrent_key_heads} does not divide "
                            f"recurrent_value_heads = {model.recurrent_value_heads}.")
    if model.attention_every and not 0 <= model.attention_offset < model.attention_every:
        raise WorkloadError(f"{w}model.attention_offset: {model.attention_offset} must be from 0 to attention_every - 1 "
                            f"= {model.attention_every - 1} (layer i attends when i % attention_every == offset).")
    if model.recurrent_state_bits > 32:
        raise WorkloadError(f"{w}model.recurrent_state_bits: {model.recurrent_state_bits} is more than 32; "
                            f"recurrent states are kept at 32 bits or fewer.")
