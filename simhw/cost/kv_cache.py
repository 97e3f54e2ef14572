"""Serving memory per device: the KV cache (quantised, windowed, sparse-attention indexer keys,
a drafter's), and recurrent layers' per-sequence states (cost/memory.py adds them to the peak)."""
from __future__ import annotations

from dataclasses import replace

from ..workload.spec import Mode, Workload


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
