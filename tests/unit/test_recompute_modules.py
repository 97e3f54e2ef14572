"""Module-wise selective recompute (memory.recompute_modules, Megatron-LM's --recompute-modules):
each module drops exactly the tensors it would keep and re-runs exactly its forward ops; the
experts' routed input copies are counted; bad combinations are one-line errors; plan offers the
light modules between none and full recompute."""
import pytest

from simhw.cli import main
from simhw.cost.estimate import estimate
from simhw.cost.memory import saved_tensor_bytes
from simhw.cost.plan import light_recompute
from simhw.errors import WorkloadError
from simhw.sim.run import simulate_step
from simhw.spec.load import load_hw
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import Phase
from simhw.workload.spec import RecomputeModule
from simhw.workload.transformer import build_graph, hot_rank_copies

S, B = 4096, 1


def _wl(model="qwen3-30b-a3b", modules=None, memory=None, **raw):
    memory = {"zero_stage": 1, **({"recompute_modules": modules} if modules is not None else {}), **(memory or {})}
    base = {"model": model, "mode": "train", "seq_len": S, "micro_batch": B, "global_batch": 64, "devices": 16,
            "dtype": "bf16", "optimizer": "adamw", "parallelism": {"ep": 8}, "memory": memory}
    base.update(raw)
    return workload_from_dict(base)


def _recomputed(wl):
    return [op for op in build_graph(wl).ops if op.phase is Phase.RECOMPUTE]


def test_modules_parse_as_a_list_or_joined_and_imply_selective():
    a, b = _wl(modules=["layernorm", "moe_act"]), _wl(modules="moe_act+layernorm")
    assert a.memory == b.memory
    assert a.memory.recompute.value == "selective"
    assert a.memory.recomputed() == {RecomputeModule.LAYERNORM, RecomputeModule.MOE_ACT}
    assert a.memory.recompute_label() == "layernorm+moe_act"
    plain = _wl(memory={"recompute": "selective"})
    assert plain.memory.recomputed() == {RecomputeModule.CORE_ATTN} and plain.memory.recompute_label() == "selective"


@pytest.mark.parametrize("memory,needle", [
    ({"recompute_modules": ["foo"]}, "'foo' is not a recompute module"),
    ({"recompute": "full", "recompute_modules": ["moe_act"]}, "memory.recompute is full"),
    ({"recompute_modules": ["mla_up_proj"]}, "mla_up_proj does not apply to qwen3-30b-a3b"),
    ({"recompute_modules": ["mlp"]}, "no dense FFN layer"),
    ({"recompute_modules": ["shared_experts"]}, "no shared experts"),
    ({"recompute_modules": 3}, "expected a list of modules"),
])
def test_bad_modules_are_one_line_errors(memory, needle):
    with pytest.raises(WorkloadError, match=needle):
        _wl(memory=memory)


def test_dense_fused_norms_are_fused_into_their_linears_so_layernorm_is_an_error_there():
    with pytest.raises(WorkloadError, match="layernorm does not apply to llama3-8b"):
        _wl("llama3-8b", ["layernorm"], parallelism={})
    eager = _wl("llama3-8b", ["layernorm"], parallelism={}, framework="eager")   # torch's norms are separate
    base = saved_tensor_bytes(_wl("llama3-8b", parallelism={}, framework="eager"))
    got = saved_tensor_bytes(eager)
    assert base["attn_norm"] - got["attn_norm"] == pytest.approx(2 * S * B * 4096)
    assert base["mlp_norm"] - got["mlp_norm"] == pytest.approx(2 * S * B * 4096)


def test_recompute_modules_outside_training_are_an_error(tmp_path, capsys):
    path = tmp_path / "w.yaml"
    path.write_text("model: qwen3-30b-a3b\nmode: prefill\nseq_len: 1024\nglobal_batch: 1\nmicro_batch: 1\n"
                    "memory: {recompute_modules: [moe_act]}\n")
    assert main(["estimate", str(path), "--hw", "h100"]) == 2
    err = capsys.readouterr().err
    assert "recompute applies to training" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_experts_keep_their_routed_copies():
    """Each token's k copies feed the experts' first GEMM, which keeps them (2 B each in bf16), with
    the router's fp32 scores; eager PyTorch keeps the weighted outputs after the down projection too."""
    m = _wl().model
    hot = hot_rank_copies(S * B * m.experts_per_token, 8) / (S * B * m.experts_per_token)   # the fullest of 8 ranks
    assert 1.0 < hot < 1.03
    got = saved_tensor_bytes(_wl())["moe_in"]
    assert got == pytest.approx(S * B * (2 * hot * m.experts_per_token * m.hidden + 4 * m.experts))
    for model, share in (("qwen3-30b-a3b", 0.464), ("deepseek-v3", 0.324), ("gpt-oss-120b", 0.213)):
        whole = saved_tensor_bytes(_wl(model, parallelism={}))     # docs/workloads.md: 46%, 32%, 21% without EP
        assert whole["moe_in"] / (sum(whole.values()) - whole["moe_in"]) == pytest.approx(share, abs=0.001)
    eager = saved_tensor_bytes(_wl(framework="eager"))["moe_in"]
    assert eager == pytest.approx(S * B * (4 * hot * m.experts_per_token * m.hidden + 4 * m.experts))
    skewed = saved_tensor_bytes(_wl(parallelism={"ep": 8, "ep_imbalance": 1.5}))["moe_in"]
    assert skewed == pytest.approx(S * B * (2 * (hot + 0.5) * m.experts_per_token * m.hidden + 4 * m.experts))


def test_each_moe_module_drops_what_it_keeps():
    m = _wl().model
    base = saved_tensor_bytes(_wl())
    act = saved_tensor_bytes(_wl(modules=["moe_act"]))
    hot = hot_rank_copies(S * B * m.experts_per_token, 8) / (S * B * m.experts_per_token)
    routed = S * B * m.expert_ffn * m.experts_per_token * hot
    assert base["mlp_mid"] - act["mlp_mid"] == pytest.approx(2 * routed)
    assert {k: v for k, v in act.items() if k != "mlp_mid"} == {k: v for k, v in base.items() if k != "mlp_mid"}
    norm = saved_tensor_bytes(_wl(modules=["layernorm"]))    # MoE layers' FFN norm is its own kernel
    assert base["mlp_norm"] - norm["mlp_norm"] == pytest.approx(2 * S * B * m.hidden)
    assert norm["attn_norm"] == base["attn_norm"]            # GQA's is fused into the QKV linear
    whole = saved_tensor_bytes(_wl(modules=["moe"]))
    assert whole["moe_in"] == 0 and whole["mlp_act"] == 0 and whole["mlp_mid"] == 0
    assert whole["mlp_norm"] == base["mlp_norm"]             # the block keeps its input


def test_mla_modules_drop_the_per_head_qkv_and_the_norms():
    m = _wl("deepseek-v2-lite").model
    base = saved_tensor_bytes(_wl("deepseek-v2-lite"))
    up = saved_tensor_bytes(_wl("deepseek-v2-lite", ["mla_up_proj"]))
    assert base["qkv"] - up["qkv"] == pytest.approx(2 * S * B * m.heads * (2 * m.head_dim + m.v_head_dim))
    norm = saved_tensor_bytes(_wl("deepseek-v2-lite", ["layernorm"]))
    assert norm["attn_norm"] == 0                            # MLA's norm feeds separate down projections
    shared = saved_tensor_bytes(_wl("deepseek-v2-lite", ["shared_experts"]))
    moe = m.moe_layers / m.layers
    assert base["mlp_mid"] - shared["mlp_mid"] == pytest.approx(2 * S * B * moe * m.shared_expert_ffn)
    assert light_recompute(_wl("deepseek-v2-lite")) == "layernorm+moe_act+mla_up_proj"
    assert light_recompute(_wl()) == "layernorm+moe_act" and light_recompute(_wl("llama3-8b", parallelism={})) == ""
    assert light_recompute(_wl("llama3-8b", parallelism={}, framework="compiled")) == "op"


def test_recompute_reruns_exactly_the_modules_forward_ops():
    act = _recomputed(_wl(modules=["moe_act"]))
    assert act and {op.name.split(".")[0] for op in act} == {"mlp_act"}
    whole = {op.name.split(".")[0] for op in _recomputed(_wl(modules=["moe"]))}
    assert {"moe_router", "moe_dispatch", "moe_a2a", "mlp_up", "mlp_down", "moe_combine"} <= whole
    assert not whole & {"mlp_norm", "residual2", "attn"}
    up = _wl("deepseek-v2-lite", ["mla_up_proj"])
    ops = _recomputed(up)
    assert {op.name.split(".")[0] for op in ops} == {"kv_up", "rope"}    # v2-lite's query has no latent
    fwd = [op for op in build_graph(up).ops if op.phase is Phase.FWD and op.name.startswith("kv_up.")]
    assert sum(op.flops for op in ops if op.name.startswith("kv_up")) == pytest.approx(sum(op.flops for op in fwd))


def test_with_flash_attention_core_attn_costs_the_kernel_again_and_saves_nothing():
    none, sel = _wl("llama3-8b", parallelism={}), _wl("llama3-8b", memory={"recompute": "selective"}, parallelism={})
    assert saved_tensor_bytes(none) == saved_tensor_bytes(sel)
    hw = load_hw("dgx-h100")
    attn_fwd = sum(op.flops * op.count for op in build_graph(none).ops if op.phase is Phase.FWD
                   and op.name.startswith("attn."))
    a, b = estimate(none, hw), estimate(sel, hw)
    assert b.hardware_flops - a.hardware_flops == pytest.approx(attn_fwd * none.microbatches * none.devices, rel=1e-9)
    assert b.step_time_s > a.step_time_s


def test_more_recompute_saves_more_and_costs_more_and_simulation_agrees():
    hw = load_hw("dgx-h100")
    ladder = [_wl(), _wl(modules=["layernorm", "moe_act"]), _wl(modules=["moe"]),
              _wl(memory={"recompute": "full"})]
    est = [estimate(w, hw) for w in ladder]
    acts = [e.memory.activations_bytes for e in est]
    times = [e.step_time_s for e in est]
    assert acts == sorted(acts, reverse=True) and len(set(acts)) == 4
    assert times == sorted(times) and len(set(times)) == 4
    sim = simulate_step(ladder[1], hw, keep_tasks=False)
    assert sim.step_time_s == pytest.approx(est[1].step_time_s, rel=0.03)


def test_plan_offers_the_light_recompute_between_none_and_full(capsys):
    code = main(["plan", "workloads/qwen3-30b-a3b-train.yaml", "--hw", "dgx-h100", "--top", "200", "--format",
                 "csv"])
    assert code == 0
    rows = capsys.readouterr().out.splitlines()
    assert any(",layernorm+moe_act," in r for r in rows[1:])


def test_recompute_layers_moves_linearly_between_none_and_full():
    hw = load_hw("dgx-h100")
    full = {"recompute": "full"}
    none, all_, part = (estimate(_wl(memory=m), hw) for m in ({}, full, {**full, "recompute_layers": 12}))
    f = 12 / 48
    act = lambda r: r.memory.activations_bytes   # noqa: E731
    assert act(part) == pytest.approx((1 - f) * act(none) + f * act(all_), rel=1e-9)
    extra = lambda r: r.hardware_flops - r.model_flops   # noqa: E731
    assert extra(part) == pytest.approx(f * extra(all_), rel=1e-9)
    assert none.step_time_s < part.step_time_s < all_.step_time_s
    wl = _wl(memory={**full, "recompute_layers": 12})
    assert simulate_step(wl, hw, keep_tasks=False).step_time_s == pytest.approx(part.step_time_s, rel=0.03)


def test_recompute_layers_counts_from_each_stages_first_layer():
    from simhw.workload.recompute import block_recomputed
    wl = _wl(memory={"recompute": "full", "recompute_layers": 2}, parallelism={"ep": 4, "pp": 4})
    assert [i for i in range(48) if block_recomputed(wl, i)] == [0, 1, 12, 13, 24, 25, 36, 37]
    vp = _wl(memory={"recompute": "full", "recompute_layers": 1},
             parallelism={"ep": 4, "pp": 2, "interleave": 2, "schedule": "interleaved"})
    assert [i for i in range(48) if block_recomputed(vp, i)] == [0, 12, 24, 36]


@pytest.mark.parametrize("memory,needle", [
    ({"recompute_layers": 2}, "needs recompute: full"),
    ({"recompute": "full", "recompute_layers": 49}, "more than the 48 layers of each model chunk"),
    ({"recompute": "full", "recompute_layers": -1}, "recompute_layers"),
])
def test_bad_recompute_layers_are_one_line_errors(memory, needle):
    with pytest.raises(WorkloadError, match=needle):
        _wl(memory=memory)


def _titan(recompute, **raw):
    base = {"model": "llama3-8b", "mode": "train", "seq_len": 8192, "micro_batch": 1, "global_batch": 8,
            "devices": 8, "dtype": "bf16", "optimizer": "adamw", "framework": "compiled",
            "memory": {"recompute": recompute, "zero_stage": 3}}
    base.update(raw)
    return workload_from_dict(base)


def test_per_op_checkpointing_keeps_the_policys_outputs():
    """torchtitan's op policy: per token, the block input, wq's and wv's outputs, the attention output
    (and its fp32 log-sum-exp per head), w1's and w2's outputs."""
    m = _titan("op").model
    got = saved_tensor_bytes(_titan("op"))
    per_token = m.hidden + (m.q_dim + m.kv_dim) + m.q_dim + m.ffn + m.hidden
    assert sum(got.values()) == pytest.approx(8192 * (2 * per_token + 4 * m.heads))


def test_per_op_checkpointing_recomputes_every_second_matmul_and_the_rest():
    wl = _titan("op")
    rec = _recomputed(wl)
    names = {op.name.split(".")[0] for op in rec if op.layer == 0}
    assert {"attn_norm", "qkv_k", "rope", "attn_out", "residual1", "mlp_norm", "mlp_up_w3", "mlp_act"} <= names
    assert not names & {"attn", "qkv", "mlp_up", "mlp_down", "residual2"}
    m = wl.model
    gemm = sum(op.flops for op in rec if op.layer == 0 and op.kind.name == "GEMM")
    assert gemm == pytest.approx(2 * 8192 * m.hidden * (m.kv_dim + m.q_dim + m.ffn))   # wk, wo, w3
    hw = load_hw("dgx-h100")
    none, op, full = (estimate(_titan(r), hw).step_time_s for r in ("none", "op", "full"))
    assert none < op < full


@pytest.mark.parametrize("raw,needle", [
    ({"framework": "fused"}, "torchtitan's per-op checkpoint policy"),
    ({"model": "qwen3-30b-a3b"}, "dense blocks with standard attention"),
])
def test_per_op_checkpointing_where_it_does_not_apply_is_an_error(raw, needle):
    with pytest.raises(WorkloadError, match=needle):
        _titan("op", **raw)


def test_plan_recomputes_just_enough_layers_where_full_recompute_fits():
    from simhw.cost.memory import memory_breakdown
    from simhw.cost.plan import _expand, plan
    from simhw.workload.from_yaml import load_workload

    sets = ["model=llama3-70b", "devices=16", "precision=none"]
    result = plan("workloads/llama3-8b-fp8-train.yaml", "dgx-h100", sets)
    partial = [c for c in result.ranked if str(dict(c.settings)["memory.recompute"]).startswith("full ")]
    assert partial
    hw = load_hw("dgx-h100")
    for cand in partial[:3]:
        over = _expand(dict(cand.settings))
        n = over["memory.recompute_layers"]
        wl = load_workload("workloads/llama3-8b-fp8-train.yaml", sets + [f"{k}={v}" for k, v in over.items()])
        assert memory_breakdown(wl, hw).fits and estimate(wl, hw).step_time_s == cand.result.step_time_s
        fewer = load_workload("workloads/llama3-8b-fp8-train.yaml",
                              sets + [f"{k}={v}" for k, v in dict(over, **{"memory.recompute_layers": n - 1}).items()])
        assert n == 1 or not memory_breakdown(fewer, hw).fits


@pytest.mark.parametrize("wl", [_wl(modules=["layernorm", "moe_act"]), _wl(memory={"recompute": "full",
                                                                                     "recompute_layers": 12}),
                                _titan("op")], ids=["modules", "layers", "op"])
def test_simulation_keeps_and_recomputes_what_the_workload_does(wl):
    """simulate without --plan replays the workload's own recompute: its time and its peak memory
    follow the estimate's."""
    hw = load_hw("dgx-h100")
    est, sim = estimate(wl, hw), simulate_step(wl, hw, keep_tasks=False)
    assert sim.step_time_s == pytest.approx(est.step_time_s, rel=0.03)
    assert sim.peak_memory_bytes["device"] == pytest.approx(est.memory.peak_bytes, rel=0.03)
    assert sim.plan.startswith(wl.memory.recompute.value.replace("full", "full-recompute"))
