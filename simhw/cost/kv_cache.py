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


def _tp_shards(wl: Workload) -> int:
    """TP ranks a cache is split over: by KV heads, or by sequences under data-parallel attention."""
    par, m = wl.parallelism, wl.model
    return par.tp if par.attention_dp else min(par.tp, m.kv_cache_heads)


def recurrent_state_bytes(wl: Workload, device: int | None = None) -> float:
    """The recurrent layers' states on one device: TP ranks split them by value heads (by sequences
    under DP attention), pipeline stages by layers (``device``: that pipeline device's recurrent
    layers; else an even share). A decode step rewrites all of it."""
    m, par = wl.model, wl.parallelism
    if not m.recurrent_layers or wl.mode is Mode.TRAIN:
        return 0.0
    sequences = wl.micro_batch * (wl.decode.samples if wl.mode is Mode.DECODE else 1)
    shards = par.tp if par.attention_dp else min(par.tp, m.recurrent_value_heads)
    share = 1.0 / par.pp
    if device is not None and par.pp > 1:
        share = sum(1 for i in wl.device_layers()[device] if m.is_recurrent(i)) / m.recurrent_layers
    return sequences * recurrent_state_bytes_per_sequence(wl) * share / shards


def kv_cache_bytes(wl: Workload, device: int | None = None) -> float:
    """KV cache on one device at the end of generation (prefill: the prompt's cache), with the
    recurrent layers' per-sequence state (recurrent_state_bytes_per_sequence). ``device``: that
    pipeline device's, from the attention layers it holds (Workload.device_layers; the drafter's
    cache on the output layer's device, where it runs: workload/transformer.py _draft_ops); else
    an even share of the pipeline's."""
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
    shards = _tp_shards(wl) * par.cp
    # a windowed layer keeps each sequence's last sliding_window tokens only
    kept = min(tokens, sequences * m.sliding_window) if m.windowed_layers else tokens
    per_layer = kv_cache_bytes_per_token(wl) / m.attention_layers / shards if m.attention_layers else 0.0
    if device is not None and par.pp > 1:
        held = wl.device_layers()[device]
        windowed = sum(1 for i in held if m.is_windowed(i))
        full_layers, share = sum(1 for i in held if m.is_attention(i)) - windowed, 1.0
    else:
        windowed, full_layers, share = m.windowed_layers, m.attention_layers - m.windowed_layers, 1.0 / par.pp
    full = (tokens * full_layers + kept * windowed) * per_layer * share + recurrent_state_bytes(wl, device)
    if wl.mode is Mode.DECODE and wl.decode.speculative_tokens:
        drafter = device is None or par.pp == 1 or device == wl.piece_devices()[1]
        draft = wl.decode.draft_model
        if draft is not None and drafter:          # the draft model keeps its own cache of the sequences
            dpar = par if device is None else replace(par, pp=1, layout="")
            full += kv_cache_bytes(replace(wl, model=draft, parallelism=dpar,
                                           decode=replace(wl.decode, speculative_tokens=0, draft_model=None)))
        elif draft is None and drafter:            # the drafter's one layer caches its keys and values too
            full += tokens * per_layer * (1.0 / par.pp if device is None else 1.0)
    return full
