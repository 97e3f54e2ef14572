"""Multi-head latent attention (DeepSeek-V2 arXiv 2405.04434 §2.1, V3 arXiv 2412.19437) and a
mixture of experts' dense leading layers (first_k_dense_replace): parameters, KV cache, op graph,
memory, and the estimate against the simulation."""
from dataclasses import replace

import pytest

from simhw.cost.memory import kv_cache_bytes, layer_params_per_device, memory_breakdown, saved_tensor_bytes
from simhw.spec.model import DType
from simhw.workload.graph import OpKind, Phase
from simhw.workload.builtins import builtin_model
from simhw.workload.spec import DecodeOptions, Mode, Optimizer, Parallelism, Workload
from simhw.workload.transformer import build_graph

V3 = builtin_model("deepseek-v3")
LITE = builtin_model("deepseek-v2-lite")


def _wl(model, mode=Mode.DECODE, tp=1, pp=1, batch=4, seq=1024, **kw):
    return Workload(name="t", model=model, mode=mode, seq_len=seq, global_batch=batch * pp, micro_batch=batch,
                    dtype=DType.BF16, optimizer=Optimizer.ADAMW if mode is Mode.TRAIN else Optimizer.NONE,
                    devices=tp * pp, parallelism=Parallelism(tp=tp, pp=pp),
                    decode=DecodeOptions(context_len=seq, new_tokens=2), **kw)


def test_deepseek_parameter_counts_match_their_model_cards():
    """DeepSeek-V3: 671 B parameters, 37 B activated per token (technical report §1, without the
    multi-token-prediction module); V2-Lite: 15.7 B, 2.4 B activated (model card; embedding
    excluded)."""
    assert V3.params() == pytest.approx(671e9, rel=0.002)
    assert V3.params(active=True) == pytest.approx(37e9, rel=0.02)
    assert LITE.params() == pytest.approx(15.7e9, rel=0.003)
    assert LITE.params(active=True) - LITE.embedding_params() == pytest.approx(2.4e9, rel=0.03)
    # the three dense layers hold 3 x 3 x 7168 x 18432 FFN weights where routed layers hold experts
    dense_ffn = 3 * 7168 * 18432
    assert V3.layer_params(moe=False) == V3.attention_params() + dense_ffn + 2 * 7168


def test_mla_caches_the_latent_and_the_rope_key_whole_on_every_tp_rank():
    """(d_c + d_h^R) l elements per token (DeepSeek-V2 Table 1): 61 x 576 for V3; every TP rank
    needs the whole latent, so TP does not split the cache as it splits GQA's KV heads."""
    assert V3.kv_elements_per_token() == 61 * (512 + 64)
    one, eight = kv_cache_bytes(_wl(V3)), kv_cache_bytes(_wl(V3, tp=8))
    assert one == eight == pytest.approx(4 * (1024 + 2) * 61 * 576 * 2)
    gqa = builtin_model("llama3-70b")
    assert kv_cache_bytes(_wl(gqa, tp=8)) == pytest.approx(kv_cache_bytes(_wl(gqa)) / 8)


def _gemm_flops_per_token(wl):
    g = build_graph(wl, compact=True)
    fwd = [op for op in g.ops if op.phase is Phase.FWD and op.kind is OpKind.GEMM and op.layer >= 0]
    return sum(op.flops * op.count for op in fwd) / g.tokens


@pytest.mark.parametrize("mode", [Mode.DECODE, Mode.PREFILL, Mode.TRAIN])
@pytest.mark.parametrize("model", [V3, LITE], ids=["v3", "v2-lite"])
def test_gemm_flops_are_twice_the_active_weights_absorbed_or_not(model, mode):
    """Absorbed decode multiplies by W_UK and W_UV per head where prefill and training up-project
    K and V: the same weights, so each token's GEMM FLOPs are 2 x its active weights (norms and the
    embedding aside) in every mode."""
    norms = model.layers * (2 * model.hidden + model.q_lora_rank + model.kv_lora_rank)
    weights = model.params(active=True) - model.embedding_params() - model.head_params() - norms
    assert _gemm_flops_per_token(_wl(model, mode=mode, batch=1, seq=512)) == pytest.approx(2 * weights, rel=1e-9)


def test_decode_attends_over_the_latent_as_one_kv_head():
    wl = _wl(V3, tp=8, batch=16, seq=4096)
    att = next(op for op in build_graph(wl, compact=True).ops if op.kind is OpKind.ATTENTION)
    s = att.shape
    assert (s["heads"], s["kv_heads"], s["kv_token_elems"]) == (16, 1, 576)
    # QK^T over 576 dims and AV over 512, per head and cached token
    assert att.flops == pytest.approx(2 * 16 * 16 * s["seq_kv"] * (576 + 512))
    assert att.input_bytes == pytest.approx(16 * 16 * 544 * 2 + 16 * s["seq_kv"] * 576 * 2)


def test_prefill_attends_unabsorbed_with_qk_and_v_head_dims():
    wl = _wl(LITE, mode=Mode.PREFILL, batch=2, seq=2048)
    att = next(op for op in build_graph(wl, compact=True).ops if op.kind is OpKind.ATTENTION)
    assert att.shape["kv_heads"] == att.shape["heads"] == 16 and "kv_token_elems" not in att.shape
    # causal: half of QK^T (192 dims) and AV (128 dims) over the full square
    assert att.flops == pytest.approx(0.5 * 2 * 2 * 16 * 2048 ** 2 * (192 + 128))


def test_mla_decode_reads_far_less_than_the_same_heads_as_gqa():
    """The point of MLA: at long context the cache read dominates decode, and the latent is 576
    elements per token and layer where V3's 128 heads of 192 / 128 dims would cache 40,960."""
    from simhw.cost.roofline import op_cost
    from simhw.spec.load import load_hw
    h100 = load_hw("h100")
    wl = _wl(V3, tp=8, batch=32, seq=32768)
    att = next(op for op in build_graph(wl, compact=True).ops if op.kind is OpKind.ATTENTION)
    mha = replace(att, shape={**att.shape, "kv_heads": att.shape["heads"], "kv_token_elems": 320.0})
    assert op_cost(att, h100).time_s < op_cost(mha, h100).time_s / 4


def test_dense_leading_layers_in_the_compact_graph_and_pipeline_stages():
    """The compact graph emits a stage's dense layers and its routed layers as two groups, so its
    totals equal the full graph's; the sizes come from the first layers (dense) and the rest."""
    for model, pp in ((LITE, 1), (LITE, 3), (replace(LITE, layers=8, dense_layers=3), 4)):
        wl = _wl(model, mode=Mode.TRAIN, pp=pp, batch=1, seq=256)
        full, compact = build_graph(wl), build_graph(wl, compact=True)
        total = sum(op.flops * op.count for op in full.ops)
        assert sum(op.flops * op.count for op in compact.ops) == pytest.approx(total, rel=1e-12)
    g = build_graph(_wl(LITE, batch=1), compact=True)
    assert any(op.name == "mlp_up.0" and op.count == 1 for op in g.ops)
    assert any(op.name.startswith("moe_router.1") and op.count == 26 for op in g.ops)


def test_memory_holds_replicated_down_projections_and_the_dense_layers():
    wl8 = _wl(V3, tp=8)
    rep = V3.tp_replicated_params()
    assert rep == 7168 * 1536 + 1536 + 7168 * 576 + 512
    assert layer_params_per_device(wl8) == pytest.approx((V3.layer_params() - rep) / 8 + rep)
    # one device holds the whole model: its three dense layers and 58 routed ones
    mem = memory_breakdown(_wl(LITE))
    assert mem.parameters_bytes == pytest.approx(2 * LITE.params(), rel=1e-12)


def test_mla_training_keeps_q_k_v_per_head_and_the_latents_whole():
    wl = _wl(LITE, mode=Mode.TRAIN, tp=2, batch=1, seq=1024)
    per_token = saved_tensor_bytes(wl)["qkv"] / 1024 / 2
    assert per_token == pytest.approx(8 * (192 + 192 + 128) + 2 * 512 + 64)
    assert saved_tensor_bytes(wl)["attn_out"] == pytest.approx(1024 * 2 * 8 * 128)


@pytest.mark.parametrize("mode", [Mode.TRAIN, Mode.PREFILL])
def test_simulation_agrees_with_the_estimate_on_mla_with_dense_layers(mode):
    """The simulation's per-layer costs are the mean layer (dense leading layers by their count),
    so a step of DeepSeek-V2-Lite agrees with the estimate (the simulation's serving host also
    dispatches the first layer before the GPU can start it: +0.4 ms on the estimate's rule)."""
    from simhw import estimate, simulate
    from simhw.spec.load import load_hw
    small = replace(LITE, layers=4, vocab=32000)     # 16 B parameters' training state would not fit
    wl = _wl(LITE if mode is Mode.PREFILL else small, mode=mode, batch=1, seq=1024)
    h100 = load_hw("h100")
    est, sim = estimate(wl, h100), simulate(wl, h100)
    assert sim.step_time_s == pytest.approx(est.step_time_s, rel=0.02)


@pytest.mark.parametrize("tp, metric, published", [(1, "flops", 580e12), (8, "bytes", 3000e9)])
def test_absorbed_decode_attention_near_flashmla_on_hopper(tp, metric, published):
    """FlashMLA's README (deepseek-ai/FlashMLA, first release, CUDA 12.8): up to 580 TFLOPS with
    all 128 heads (compute-bound: ~2 x 128 FLOPs per cached byte) and 3000 GB/s with TP 8's 16
    heads (memory-bound) on an H800 SXM5, which has the H100 SXM5's tensor cores and HBM3. simhw's
    attention model, not fitted on MLA, lands within 10% of both at batch 128 and 16k context
    (docs/workloads.md quotes the figures)."""
    from simhw.cost.roofline import op_cost
    from simhw.spec.load import load_hw
    wl = _wl(V3, tp=tp, batch=128, seq=16384)
    att = next(op for op in build_graph(wl, compact=True).ops if op.kind is OpKind.ATTENTION)
    t = op_cost(att, load_hw("h100")).time_s
    rate = (att.flops if metric == "flops" else att.input_bytes) / t
    assert rate == pytest.approx(published, rel=0.10)


def test_kimi_k2_and_a_nested_multimodal_config():
    """Kimi K2 (1 T parameters, 32 B activated: its model card) is DeepSeek-V3's architecture with
    384 experts, 64 heads and one dense layer; Kimi K2.5 nests the same text model under
    text_config, which simhw reads (the family's SiLU default applies when no activation is named)."""
    import json
    import tempfile
    from pathlib import Path

    from simhw.workload.hf_config import hf_config_fields
    from simhw.workload.models import Activation, ModelConfig
    k2 = builtin_model("kimi-k2")
    assert k2.params() == pytest.approx(1.0e12, rel=0.03)
    assert k2.params(active=True) == pytest.approx(32e9, rel=0.03)
    text = {"model_type": "kimi_k2", "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
            "num_hidden_layers": 61, "num_attention_heads": 64, "num_key_value_heads": 64, "kv_lora_rank": 512,
            "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
            "n_routed_experts": 384, "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 1,
            "vocab_size": 163840, "rms_norm_eps": 1e-6, "rope_theta": 50000, "tie_word_embeddings": False}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.json"
        path.write_text(json.dumps({"architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25",
                                    "text_config": text, "vision_config": {"hidden_size": 1152}}))
        fields = hf_config_fields(path, "w")
    m = ModelConfig(**fields)
    assert m.activation is Activation.SWIGLU
    assert m.params() == k2.params() and m.kv_elements_per_token() == k2.kv_elements_per_token()


def _dpa(wl):
    return replace(wl, parallelism=replace(wl.parallelism, attention_dp=True))


def test_data_parallel_attention_splits_sequences_not_heads():
    """SGLang's DP attention: each of the 8 TP ranks attends for 64 / 8 sequences with all 128
    heads and keeps only their latent cache; the FFN stays TP-split over the gathered tokens, so an
    all-gather and a reduce-scatter replace the two all-reduces of each layer."""
    from simhw.workload.graph import Collective
    from simhw.workload.opbuild import COLLECTIVE_BY_CODE
    tp, dpa = _wl(V3, tp=8, batch=64, seq=4096), _dpa(_wl(V3, tp=8, batch=64, seq=4096))
    assert kv_cache_bytes(dpa) == pytest.approx(kv_cache_bytes(tp) / 8)
    assert layer_params_per_device(dpa) - layer_params_per_device(tp) == pytest.approx(
        V3.attention_params() - (V3.attention_params() - V3.tp_replicated_params()) / 8 - V3.tp_replicated_params())
    ops = [op for op in build_graph(dpa, compact=True).ops if op.layer == 3]
    att = next(op for op in ops if op.kind is OpKind.ATTENTION)
    assert (att.shape["batch"], att.shape["heads"]) == (8, 128)
    colls = [COLLECTIVE_BY_CODE[int(op.shape["collective"])] for op in ops if op.kind is OpKind.COLLECTIVE]
    assert colls == [Collective.ALL_GATHER, Collective.REDUCE_SCATTER]
    # the same attention work, over sequences instead of heads
    flops = lambda wl: sum(op.flops * op.count for op in build_graph(wl, compact=True).ops  # noqa: E731
                           if op.kind is OpKind.ATTENTION)
    assert flops(dpa) == pytest.approx(flops(tp))


def test_data_parallel_attention_reads_each_latent_once_and_simulates_as_estimated():
    from simhw import estimate, simulate
    from simhw.spec.load import load_hw
    h200 = load_hw("h200")
    wl = replace(_wl(V3, tp=8, batch=64, seq=8192), dtype=DType.FP8)
    tp, dpa = estimate(wl, h200), estimate(_dpa(wl), h200)
    assert dpa.step_time_s < tp.step_time_s            # every rank read all 64 latents under TP
    assert dpa.memory.kv_cache_bytes == pytest.approx(tp.memory.kv_cache_bytes / 8)
    assert simulate(_dpa(wl), h200).step_time_s == pytest.approx(dpa.step_time_s, rel=0.02)


@pytest.mark.parametrize("change, needle", [({"mode": "train"}, "mode is train"),
                                            ({"micro_batch": 12, "global_batch": 12}, "multiple of tp"),
                                            ({"parallelism": {"tp": 1, "attention_dp": True}}, "tp > 1")])
def test_data_parallel_attention_errors(change, needle):
    from simhw.errors import WorkloadError
    from simhw.workload.from_yaml import workload_from_dict
    raw = {"model": "deepseek-v2-lite", "mode": "decode", "seq_len": 1024, "micro_batch": 8, "global_batch": 8,
           "devices": 8, "parallelism": {"tp": 8, "attention_dp": True}, **change}
    if change.get("parallelism"):
        raw["devices"] = 1
    with pytest.raises(WorkloadError, match="attention_dp"):
        workload_from_dict(raw)
    with pytest.raises(WorkloadError) as err:
        workload_from_dict(raw)
    assert needle in str(err.value)
