"""Mixture-of-experts models: parameters, routing, graph, memory (workload/models.py, transformer.py)."""
from __future__ import annotations

import json
import math

import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind
from simhw.workload.builtins import BUILTIN
from simhw.workload.transformer import build_graph


@pytest.mark.parametrize("name, total, active", [
    ("mixtral-8x7b", 46.7e9, 12.9e9),          # Mixtral paper (arXiv 2401.04088): 47B total, 13B active
    ("qwen3-30b-a3b", 30.5e9, 3.3e9),          # Qwen3 model card: 30.5B total, 3.3B activated
])
def test_total_and_active_parameters(name, total, active):
    m = BUILTIN[name]
    assert m.params() == pytest.approx(total, rel=0.01)
    assert m.params(active=True) == pytest.approx(active, rel=0.02)


def test_expected_active_experts():
    m = BUILTIN["mixtral-8x7b"]
    assert m.active_experts(1) == pytest.approx(2.0)                  # one token: its top-2
    assert m.active_experts(2) == pytest.approx(8 * (1 - 0.75 ** 2))
    assert m.active_experts(4096) == pytest.approx(8.0)
    assert BUILTIN["llama2-7b"].active_experts(10) == 0.0


def _wl(model, mode="decode", batch=1, tp=1, **extra):
    base = {"model": model, "mode": mode, "dtype": "bf16", "devices": tp, "parallelism": {"tp": tp},
            "micro_batch": batch, "global_batch": batch, "engine": "none"}
    if mode == "decode":
        base.update(seq_len=1025, decode={"context_len": 1024, "new_tokens": 1})
    else:
        base.update(seq_len=2048)
    return workload_from_dict({**base, **extra}, "test")


def _expert_weight_bytes(wl) -> float:
    return sum(op.weight_bytes * op.count for op in build_graph(wl).ops
               if op.kind is OpKind.GEMM and op.name.split(".")[0] in ("mlp_up", "mlp_down"))


def test_decode_reads_only_the_routed_experts():
    m = BUILTIN["mixtral-8x7b"]
    per_expert = 3 * m.hidden * m.expert_ffn * 2 * m.layers              # bf16 gate, up, down
    assert _expert_weight_bytes(_wl("mixtral-8x7b", batch=1)) == pytest.approx(2 * per_expert)
    assert _expert_weight_bytes(_wl("mixtral-8x7b", batch=256)) == pytest.approx(8 * per_expert, rel=1e-6)
    # tensor parallelism shards every expert
    assert _expert_weight_bytes(_wl("mixtral-8x7b", batch=256, tp=4)) == pytest.approx(2 * per_expert, rel=1e-6)
    hw = simhw.load_hw("a100")
    one = simhw.estimate(_wl("mixtral-8x7b", batch=1), hw).step_time_s
    many = simhw.estimate(_wl("mixtral-8x7b", batch=64), hw).step_time_s
    dense = simhw.estimate(_wl("mistral-7b", batch=1), hw).step_time_s     # the same attention, one FFN
    assert dense < one < many


def test_model_flops_count_the_active_parameters():
    wl = _wl("mixtral-8x7b", mode="prefill", batch=1)
    m = wl.model
    r = simhw.estimate(wl, simhw.load_hw("a100"))
    layer_matmuls = m.layers * (m.layer_params(active=True) - 2 * m.hidden)   # less the two RMSNorm weights
    attention = 4 * 2048 * 2048 * m.q_dim * m.layers / 2                  # causal QK^T and AV
    head = 2 * m.hidden * m.vocab                                           # prefill: logits of the last token
    assert r.model_flops == pytest.approx(2 * 2048 * layer_matmuls + attention + head, rel=1e-3)


def test_training_a_mixture_of_experts():
    wl = workload_from_dict({"model": "mixtral-8x7b", "mode": "train", "dtype": "bf16", "devices": 64,
                             "seq_len": 4096, "micro_batch": 1, "global_batch": 64,
                             "parallelism": {"tp": 8, "pp": 4, "dp": 2}}, "test")
    dense = workload_from_dict({"model": "mistral-7b", "mode": "train", "dtype": "bf16", "devices": 64,
                                "seq_len": 4096, "micro_batch": 1, "global_batch": 64,
                                "parallelism": {"tp": 8, "pp": 4, "dp": 2}}, "test")
    hw = simhw.load_hw("dgx-a100")
    moe, base = simhw.estimate(wl, hw), simhw.estimate(dense, hw)
    assert moe.memory.parameters_bytes > 6 * base.memory.parameters_bytes     # all experts are stored
    assert moe.memory.activations_bytes > base.memory.activations_bytes      # top-2 FFN activations
    assert moe.hardware_flops / base.hardware_flops == pytest.approx(1.8, abs=0.1)   # active parameters
    assert 1.3 < moe.step_time_s / base.step_time_s < 2.0   # the same attention, TP all-reduces and bubbles


def test_hf_config_with_experts(tmp_path):
    cfg = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 32000, "hidden_act": "silu", "rms_norm_eps": 1e-5,
           "rope_theta": 1e6, "num_local_experts": 8, "num_experts_per_tok": 2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "w.yaml").write_text("model: {hf_config: config.json}\nmode: decode\nseq_len: 1024\n")
    m = simhw.load_workload(tmp_path / "w.yaml").model
    assert (m.experts, m.experts_per_token, m.expert_ffn) == (8, 2, 14336)
    assert m.params() == BUILTIN["mixtral-8x7b"].params()


@pytest.mark.parametrize("extra, needle", [
    ({"experts": 8, "experts_per_token": 9}, "experts_per_token: 9 must be between 1 and experts = 8"),
    ({"experts": 8, "experts_per_token": 0}, "experts_per_token: 0 must be between 1 and experts = 8"),
    ({"experts": -2}, "experts: expected a whole number ≥ 0"),
])
def test_bad_expert_settings(extra, needle):
    with pytest.raises(simhw.errors.WorkloadError, match=needle):
        workload_from_dict({"model": {"base": "mistral-7b", **extra}, "mode": "decode", "seq_len": 128}, "w.yaml")


def _train(model="mixtral-8x7b", ep=1, tp=1, dp=16, **mem):
    return workload_from_dict({"model": model, "mode": "train", "dtype": "bf16", "devices": tp * dp,
                               "seq_len": 4096, "micro_batch": 1, "global_batch": dp,
                               "parallelism": {"tp": tp, "dp": dp, "ep": ep}, "memory": mem}, "test")


def test_expert_parallelism_shards_the_experts_and_adds_all_to_alls():
    from simhw.cost.memory import params_per_device

    m = BUILTIN["mixtral-8x7b"]
    one, eight = _train(ep=1), _train(ep=8)
    saved = params_per_device(one) - params_per_device(eight)
    assert saved == pytest.approx(m.layers * m.expert_params() * (1 - 1 / 8))
    a2a = [op for op in build_graph(eight).ops if op.name.startswith("moe_a2a")]
    assert len(a2a) == 4 * m.layers                                      # there and back, forward and backward
    fwd = [op for op in a2a if op.phase.value == "fwd"]
    # the most loaded of 8 ranks: 4096 x 2 copies on average plus the largest binomial excess
    from simhw.workload.transformer import hot_rank_copies
    hot = hot_rank_copies(8192, 8)
    assert 8192 * 1.01 < hot < 8192 * 1.03
    assert all(op.shape["ranks"] == 8 and op.shape["bytes"] == pytest.approx(hot * m.hidden * 2) for op in fwd)
    assert not [op for op in build_graph(one).ops if op.name.startswith("moe_a2a")]
    # the experts' gradients reduce over their dp / ep replicas only
    reds = {op.name: op for op in build_graph(eight).ops if op.name.endswith("_grad_reduce")}
    assert reds["dp_expert_grad_reduce"].shape["ranks"] == 2 and reds["dp_grad_reduce"].shape["ranks"] == 16


def test_expert_parallel_all_to_all_crosses_nodes_when_the_group_does():
    from simhw.cost.estimate import OpCoster

    hw = simhw.load_hw("dgx-a100")
    inside, across = _train("qwen3-30b-a3b", ep=8), _train("qwen3-30b-a3b", ep=16)
    t = {}
    for name, wl in (("inside", inside), ("across", across)):
        op = next(op for op in build_graph(wl).ops if op.name.startswith("moe_a2a"))
        t[name] = OpCoster(hw, wl).comm_time(op)
    assert t["across"] > 2 * t["inside"]                                  # NICs, not NVLink
    assert simhw.estimate(across, hw).step_time_s > 0


@pytest.mark.parametrize("model, par, needle", [
    ("mistral-7b", {"dp": 8, "ep": 2}, "needs a mixture-of-experts model"),
    ("mixtral-8x7b", {"dp": 6, "ep": 4}, "divides"),
    ("mixtral-8x7b", {"dp": 16, "ep": 16}, "divides"),                  # 8 experts over 16 ranks
])
def test_bad_expert_parallelism(model, par, needle):
    with pytest.raises(simhw.errors.WorkloadError, match=f"parallelism.ep: .*{needle}"):
        workload_from_dict({"model": model, "mode": "train", "seq_len": 128, "global_batch": par["dp"],
                            "parallelism": par}, "w.yaml")


def test_memory_helpers_agree_with_the_breakdown():
    from simhw.cost.memory import (expert_params_per_device, layer_params_per_device, memory_breakdown,
                                   params_per_device, static_bytes_per_param)

    for zero in (0, 1, 2, 3):
        wl = _train(ep=8, zero_stage=zero)
        m = wl.model
        p = params_per_device(wl, sharded_by_zero=False)
        assert p == pytest.approx(m.layers * layer_params_per_device(wl) + m.embedding_params() + m.head_params())
        pe = expert_params_per_device(wl)
        assert pe == pytest.approx(m.layers * m.expert_params() / 8)
        mem = memory_breakdown(wl)
        dense, expert = static_bytes_per_param(wl), static_bytes_per_param(wl, 16 // 8)
        assert (mem.parameters_bytes, mem.gradients_bytes, mem.optimizer_bytes) == pytest.approx(
            tuple((p - pe) * d + pe * x for d, x in zip(dense, expert)))
        assert dense[2] == pytest.approx(12 / (16 if zero >= 1 else 1))        # optimizer state over dp = 16
        assert expert[2] == pytest.approx(12 / (2 if zero >= 1 else 1))        # an expert's over its 2 replicas


def test_shared_experts_from_a_qwen_moe_config(tmp_path):
    """Qwen1.5-MoE-A2.7B (its Hugging Face config: 60 experts of 1408, top 4, a shared expert of 5632)
    has 14.3 B parameters, 2.7 B activated (its model card); the shared expert runs as one more dense
    FFN that every token passes."""
    cfg = {"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 2048,
           "intermediate_size": 5632, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
           "num_experts": 60, "num_experts_per_tok": 4, "num_hidden_layers": 24, "num_attention_heads": 16,
           "num_key_value_heads": 16, "vocab_size": 151936, "hidden_act": "silu", "tie_word_embeddings": False,
           "rms_norm_eps": 1e-6, "rope_theta": 1e6, "max_position_embeddings": 8192}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "w.yaml").write_text("model: {hf_config: config.json}\nmode: prefill\nseq_len: 1024\n")
    wl = simhw.load_workload(tmp_path / "w.yaml")
    m = wl.model
    assert m.shared_expert_ffn == 5632
    assert m.params() == pytest.approx(14.3e9, rel=0.01) and m.params(active=True) == pytest.approx(2.7e9, rel=0.01)
    ops = {op.name: op for op in build_graph(wl).ops if op.layer == 0}
    up = ops["moe_shared_up.0"]
    assert up.flops == pytest.approx(2 * 1024 * 2048 * 2 * 5632)      # gate + up over every token
    assert "moe_shared_down.0" in ops and "mlp_up.0" in ops           # routed experts stay mlp_*


@pytest.mark.parametrize("mean, ranks", [(1, 8), (2, 8), (16, 32), (8, 64), (64, 8), (256, 64)])
def test_the_hottest_rank_matches_simulated_uniform_routing(mean, ranks):
    """Balls into bins (Raab & Steger 1998): the expected fullest of ranks bins when ranks x mean
    copies land uniformly, against a seeded simulation of that routing: within 7% (the ranks'
    counts taken as independent read a little low at one copy per rank)."""
    import numpy as np
    from simhw.workload.transformer import hot_rank_copies
    rng = np.random.default_rng(7)
    counts = rng.multinomial(mean * ranks, [1 / ranks] * ranks, size=4000)
    assert hot_rank_copies(mean, ranks) == pytest.approx(counts.max(axis=1).mean(), rel=0.07)


def test_the_most_loaded_expert_parallel_rank_sets_the_pace():
    """The fullest of ep ranks carries a large excess at decode batches and a small one at
    training's; ep_imbalance scales the mean for skewed routing and every copy on one rank caps it."""
    from simhw.workload.transformer import hot_rank_copies
    assert hot_rank_copies(16, 32) / 16 > 1.4 and hot_rank_copies(32768, 8) / 32768 < 1.02
    assert hot_rank_copies(100, 8, skew=1.5) == pytest.approx(hot_rank_copies(100, 8) + 50)
    assert hot_rank_copies(1, 2, skew=2.0) == 2.0 and hot_rank_copies(50, 1) == 50

    def decode(**par):
        return workload_from_dict({"model": "qwen3-30b-a3b", "mode": "decode", "seq_len": 1024, "devices": 8,
                                   "micro_batch": 8, "global_batch": 64,
                                   "parallelism": {"dp": 8, "ep": 8, **par}}, "test")
    up = {w: next(op for op in build_graph(decode(**par)).ops if op.name.startswith("mlp_up"))
          for w, par in (("even", {}), ("skewed", {"ep_imbalance": 2.0}))}
    assert up["skewed"].flops > 1.3 * up["even"].flops
    h100 = simhw.load_hw("h100")
    assert simhw.estimate(decode(ep_imbalance=2.0), h100).step_time_s > simhw.estimate(decode(), h100).step_time_s


@pytest.mark.parametrize("par", [{"dp": 8, "ep": 8, "ep_imbalance": 0.5}, {"dp": 8, "ep": 8, "ep_imbalance": 9},
                                 {"dp": 8, "ep_imbalance": 1.5}, {"dp": 8, "ep": 8, "ep_imbalance": "high"}])
def test_bad_ep_imbalance(par):
    with pytest.raises(simhw.errors.WorkloadError, match="ep_imbalance"):
        workload_from_dict({"model": "qwen3-30b-a3b", "mode": "decode", "seq_len": 1024, "devices": 8,
                            "micro_batch": 8, "global_batch": 64, "parallelism": par}, "test")
