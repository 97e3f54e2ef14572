"""``simhw models list`` and ``simhw models show NAME``: the built-in transformer registry (and any
Hugging Face config.json), with the figures a workload's cost starts from: parameters (all and
active per token), attention kind, KV cache per token, and where each model's numbers come from."""
from __future__ import annotations

from .common import add_list_show, write_output
from .hw import _table


def register(sub) -> None:
    add_list_show(sub, "models", "list built-in models or show one: parameters, attention, KV cache",
                  "Browse the built-in models (simhw/workload/builtins.py) or read a Hugging Face config.json.",
                  "every built-in model: size, active size, attention, FFN",
                  "one model's architecture and derived figures",
                  "a built-in name (simhw models list) or a Hugging Face config.json", run)


def run(args) -> int:
    import json

    from ..workload.builtins import BUILTIN

    action = getattr(args, "models_command", None)
    if action == "list":
        rows = [summary(m) for m in BUILTIN.values()]
        if args.format == "json":
            text = json.dumps(rows, indent=2)
        else:
            keys = ("name", "params", "active params", "attention", "ffn")
            text = _table([[r[k] for k in keys] for r in rows], list(keys))
        write_output(text, args.output)
        return 0
    if action == "show":
        model = _load(args.name)
        info = {**summary(model), **details(model)}
        text = json.dumps(info, indent=2) if args.format == "json" else \
            "\n".join(f"{k:<24} {v}" for k, v in info.items())
        write_output(text, args.output)
        return 0
    args.models_parser.print_help()
    return 2


def _load(name: str):
    from pathlib import Path

    from ..errors import WorkloadError
    from ..workload.from_yaml import model_from_mapping
    from ..workload.builtins import BUILTIN, builtin_model
    from ..yamlio import closest

    model = builtin_model(name)
    if model is not None:
        return model
    path = Path(name)
    if path.suffix == ".json" or path.exists():    # checked as a workload's model: {hf_config: PATH}
        return model_from_mapping({"hf_config": path.name}, path.parent, f"{path}: ")
    raise WorkloadError(f"unknown model '{name}'{closest(name.lower(), tuple(BUILTIN))}; run 'simhw models list' "
                        f"for the built-in names, or pass a Hugging Face config.json.")


def attention_kind(m) -> str:
    """MHA, GQA (kv heads), MQA or MLA (latent width), with a sliding window when it has one."""
    if m.mla:
        kind = f"MLA (latent {m.kv_lora_rank} + RoPE {m.rope_head_dim})"
    elif m.kv_heads == m.heads:
        kind = "MHA"
    elif m.kv_heads == 1:
        kind = "MQA"
    else:
        kind = f"GQA ({m.kv_heads} KV heads)"
    if m.attention_gate:
        kind += ", gated"
    if m.sparse:
        kind += f", sparse: top {m.index_topk} keys ({m.index_heads} x {m.index_head_dim} indexer)"
    if m.sliding_window:
        share = "all layers" if not m.global_every else f"{m.windowed_layers} of {m.layers} layers"
        kind += f", window {m.sliding_window} on {share}"
    if m.recurrent_layers:
        name = {"gated_deltanet": "Gated DeltaNet", "mamba2": "Mamba-2"}[m.recurrent.value]
        if m.block_pattern:
            kind = (f"{name} on {m.recurrent_layers} of {m.layers} blocks, {kind} on {m.attention_layers}, "
                    f"FFN on {m.ffn_layers}")
        else:
            kind = (f"{name} on {m.recurrent_layers} of {m.layers} layers"
                    + (f"; {kind} on the others" if m.attention_layers else ""))
    return kind


def summary(m) -> dict:
    ffn = (f"MoE {m.experts} x {m.expert_ffn}, top {m.experts_per_token}"
           + (f" + shared {m.shared_expert_ffn}" if m.shared_expert_ffn else "")
           + (f"; {m.dense_layers} dense first" if m.dense_layers else "")) if m.moe else \
        f"{m.activation.value} {m.ffn}"
    return {"name": m.name, "params": _billions(m.params()), "active params": _billions(m.params(active=True)),
            "attention": attention_kind(m), "ffn": ffn}


def details(m) -> dict:
    """Architecture and the per-token figures: KV cache at 16 bits for the whole model."""
    return {"layers": m.layers, "hidden": m.hidden, "heads": m.heads, "kv heads": m.kv_heads,
            "head dim (q, k)": m.head_dim, "head dim (v)": m.v_head_dim, "vocab": m.vocab,
            "norm": m.norm.value, "position": m.position.value, "tied embeddings": m.tied_embeddings,
            "kv cache per token": f"{(m.kv_elements_per_token() * 2 + m.attention_layers * m.index_key_bytes) / 1024:.1f}"
                                  f" KiB at 16 bits ({m.kv_elements_per_token()} elements"
                                  + (f" + {m.attention_layers * m.index_key_bytes:.0f} B of FP8 indexer keys)"
                                     if m.sparse else ")"),
            **_recurrent_details(m),
            **({"multi-token prediction": f"{m.mtp_layers} module{'s' if m.mtp_layers > 1 else ''}, trained with "
                                          f"the model (not in params)"} if m.mtp_layers else {}),
            "source": m.source or "-"}


def _recurrent_details(m) -> dict:
    if not m.recurrent_layers:
        return {}
    states, conv = m.recurrent_state_elements()
    return {"recurrent heads (k, v)": f"{m.recurrent_key_heads} x {m.recurrent_key_dim}, "
                                            f"{m.recurrent_value_heads} x {m.recurrent_value_dim}",
            "recurrent state / seq": f"{(states * m.recurrent_state_bits / 8 + conv * 2) / 2**20:.1f} MiB "
                                            f"({states} state elements at {m.recurrent_state_bits} bits, {conv} "
                                            f"convolution inputs at 16)"}


def _billions(n: float) -> str:
    return f"{n / 1e12:.2f} T" if n >= 1e12 else f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"
