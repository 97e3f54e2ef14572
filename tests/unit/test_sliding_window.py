"""Sliding-window attention (Mistral 7B, arXiv 2310.06825 §2; Gemma 2, arXiv 2408.00118 §2):
the attention op's FLOPs and reads, the kernel model, the rolling KV cache, layer kinds in the
compact graph, and Hugging Face configs."""
import json
from dataclasses import replace

import pytest

from simhw.cost.memory import kv_cache_bytes
from simhw.cost.roofline import op_cost
from simhw.spec.load import load_hw
from simhw.spec.model import DType
from simhw.workload.graph import OpKind
from simhw.workload.builtins import builtin_model
from simhw.workload.spec import DecodeOptions, Mode, Optimizer, Parallelism, Workload
from simhw.workload.transformer import build_graph

MISTRAL = builtin_model("mistral-7b")
GEMMA2 = builtin_model("gemma2-9b")
H100 = load_hw("h100")


def _wl(model, mode, seq, batch=1, pp=1, new=2):
    return Workload(name="t", model=model, mode=mode, seq_len=seq, global_batch=batch * pp, micro_batch=batch,
                    dtype=DType.BF16, optimizer=Optimizer.ADAMW if mode is Mode.TRAIN else Optimizer.NONE,
                    devices=pp, parallelism=Parallelism(pp=pp), decode=DecodeOptions(context_len=seq, new_tokens=new))


def _attention(wl, layer=0):
    return next(op for op in build_graph(wl).ops if op.kind is OpKind.ATTENTION and op.layer == layer)


def test_builtins_carry_their_windows():
    assert (MISTRAL.sliding_window, MISTRAL.windowed_layers) == (4096, 32)
    assert (GEMMA2.sliding_window, GEMMA2.global_every, GEMMA2.windowed_layers) == (4096, 2, 21)
    assert GEMMA2.is_windowed(0) and not GEMMA2.is_windowed(1)      # the first layer is local


def test_decode_reads_and_multiplies_only_the_window():
    wl = _wl(MISTRAL, Mode.DECODE, 16384, batch=4)
    att = _attention(wl)
    heads, d = 32, 128
    assert att.flops == pytest.approx(4 * 4 * heads * 4096 * d)
    assert att.input_bytes == pytest.approx(4 * heads * d * 2 + 4 * 4096 * 8 * 2 * d * 2)
    full = _attention(replace(wl, model=replace(MISTRAL, sliding_window=0)))
    assert op_cost(att, H100).time_s < op_cost(full, H100).time_s / 2.5


def test_causal_prefill_drops_the_triangle_beyond_the_window():
    s, w = 16384, 4096
    att = _attention(_wl(MISTRAL, Mode.PREFILL, s))
    assert att.flops == pytest.approx(4 * 32 * 128 * (w * s - w * w / 2))
    full = _attention(_wl(replace(MISTRAL, sliding_window=0), Mode.PREFILL, s))
    # the kernel walks only the key blocks each q-block sees: its time falls with its FLOPs
    ratio = op_cost(att, H100).time_s / op_cost(full, H100).time_s
    assert ratio == pytest.approx(att.flops / full.flops, rel=0.1)
    # shorter than the window: nothing changes
    short = _wl(MISTRAL, Mode.PREFILL, 2048)
    assert _attention(short).flops == _attention(replace(short, model=replace(MISTRAL, sliding_window=0))).flops


def test_the_kv_cache_of_windowed_layers_rolls():
    """Mistral's rolling buffer keeps the last 4096 tokens per sequence in every layer; Gemma 2
    keeps everything in its global layers (one in two) and the window in the others."""
    wl = _wl(MISTRAL, Mode.DECODE, 16384, batch=2, new=1024)
    per_token = 2 * 32 * 8 * 128 * 2
    assert kv_cache_bytes(wl) == pytest.approx(2 * 4096 * per_token)
    g = _wl(GEMMA2, Mode.DECODE, 16384, batch=2, new=1024)
    tokens = 2 * (16384 + 1024)
    per_layer = 2 * 8 * 256 * 2
    assert kv_cache_bytes(g) == pytest.approx(per_layer * (21 * tokens + 21 * 2 * 4096))


def test_compact_graph_groups_local_and_global_layers_per_stage():
    for pp in (1, 3):   # 42 layers: 14 per stage, local and global in each
        wl = _wl(GEMMA2, Mode.TRAIN, 8192, pp=pp)
        full, compact = build_graph(wl), build_graph(wl, compact=True)
        assert sum(o.flops * o.count for o in compact.ops) == pytest.approx(sum(o.flops * o.count for o in full.ops),
                                                                              rel=1e-12)
    atts = [o for o in build_graph(_wl(GEMMA2, Mode.PREFILL, 8192), compact=True).ops if o.kind is OpKind.ATTENTION]
    assert sorted((o.layer, o.count, "window" in o.shape) for o in atts) == [(0, 21, True), (1, 21, False)]


def test_simulation_agrees_with_the_estimate_on_alternating_layers():
    from simhw import estimate, simulate
    wl = _wl(GEMMA2, Mode.PREFILL, 16384)
    assert simulate(wl, H100).step_time_s == pytest.approx(estimate(wl, H100).step_time_s, rel=0.02)


@pytest.mark.parametrize("extra, window, every", [
    ({"model_type": "mistral", "sliding_window": 4096}, 4096, 0),
    ({"model_type": "qwen2", "sliding_window": 131072, "use_sliding_window": False}, 0, 0),
    ({"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "sliding_window": 4096}, 4096, 2),
    ({"model_type": "gpt_oss", "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 6},
     128, 2),
    ({"model_type": "gemma3_text", "sliding_window": 1024,
      "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 2}, 1024, 6),
    ({"model_type": "gemma3", "sliding_window": 1024, "sliding_window_pattern": 6}, 1024, 6),
])
def test_hugging_face_windows(tmp_path, extra, window, every):
    from simhw.workload.hf_config import hf_config_fields
    cfg = {"hidden_size": 512, "num_attention_heads": 8, "num_hidden_layers": 12, "intermediate_size": 1024,
           "vocab_size": 1000, "hidden_act": "silu", "rms_norm_eps": 1e-6, **extra}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = hf_config_fields(tmp_path / "config.json", "w")
    assert (out.get("sliding_window", 0), out.get("global_every", 0)) == (window, every)


def test_irregular_layer_types_are_approximated_with_a_warning(tmp_path):
    from simhw.errors import SimhwWarning
    from simhw.workload.hf_config import hf_config_fields
    types = ["sliding_attention"] * 3 + ["full_attention"] + ["sliding_attention"] * 7 + ["full_attention"]
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 512, "num_attention_heads": 8,
                                                      "num_hidden_layers": 12, "vocab_size": 1000,
                                                      "sliding_window": 512, "layer_types": types}))
    with pytest.warns(SimhwWarning, match="layer_types"):
        out = hf_config_fields(tmp_path / "config.json", "w")
    assert out["global_every"] == 6


@pytest.mark.parametrize("kind, match", [("hyper_attention", "other kinds"),
                                         ("linear_attention", "no linear_num_value_heads")])
def test_layer_kinds_simhw_does_not_model_are_named(tmp_path, kind, match):
    """A layer kind simhw does not know, or recurrent layers without the keys that size them, are
    priced as full attention, and a warning says so."""
    from simhw.errors import SimhwWarning
    from simhw.workload.hf_config import hf_config_fields
    types = [kind] * 3 + ["full_attention"]
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 512, "num_attention_heads": 8,
                                                      "num_hidden_layers": 4, "vocab_size": 1000,
                                                      "layer_types": types}))
    with pytest.warns(SimhwWarning, match=match):
        out = hf_config_fields(tmp_path / "config.json", "w")
    assert "sliding_window" not in out and "recurrent" not in out
