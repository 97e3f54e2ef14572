"""Speculative decoding with a one-layer drafter (DeepSeek-V3's multi-token prediction, EAGLE):
the verify pass, the drafter's ops and memory, the tokens a step yields, and the errors."""
import pytest

import simhw
from simhw.errors import WorkloadError
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind
from simhw.workload.spec import DecodeOptions
from simhw.workload.transformer import build_graph

BASE = {"model": "llama3-8b", "mode": "decode", "seq_len": 4096, "micro_batch": 16, "global_batch": 16,
        "decode": {"context_len": 4096, "new_tokens": 512}, "engine": "vllm-v1"}
H100 = simhw.load_hw("h100")


def _wl(k, a=0.8, **extra):
    return workload_from_dict({**BASE, **extra, "decode": {**BASE["decode"], "speculative_tokens": k, "acceptance": a}})


@pytest.mark.parametrize("k, a, expected", [(0, 0.0, 1.0), (1, 0.8, 1.8), (3, 0.5, 1.875), (2, 0.0, 1.0)])
def test_tokens_per_step_is_the_expected_accepted_prefix_plus_one(k, a, expected):
    assert DecodeOptions(speculative_tokens=k, acceptance=a).tokens_per_step == pytest.approx(expected)


def test_the_verify_pass_packs_queries_and_the_drafter_runs_k_layers():
    base, spec = build_graph(_wl(0)), build_graph(_wl(2))
    att = [op for op in spec.ops if op.kind is OpKind.ATTENTION and not op.name.startswith("draft")]
    att0 = [op for op in base.ops if op.kind is OpKind.ATTENTION]
    # each sequence's 3 queries ride on the query heads against its keys: 3x the FLOPs, the same keys
    assert att[0].shape["heads"] == 3 * att0[0].shape["heads"] and att[0].shape["seq_q"] == 1
    assert att[0].flops == pytest.approx(3 * att0[0].flops * (4096 + 256 + 2) / (4096 + 256))
    assert spec.tokens == 3 * base.tokens
    drafts = {op.name.split(".")[0] for op in spec.ops if op.name.startswith("draft")}
    assert drafts == {"draft0", "draft1"}
    assert sum(op.name == "draft1.lm_head" for op in spec.ops) == 1


def test_throughput_and_generation_time_count_the_accepted_tokens():
    plain, spec = simhw.estimate(_wl(0), H100), simhw.estimate(_wl(1, 0.8), H100)
    assert spec.step_time_s > plain.step_time_s                     # verify 2 tokens and draft one
    assert spec.tokens_per_s == pytest.approx(16 * 1.8 / spec.step_time_s)
    assert spec.total_time_s == pytest.approx(spec.step_time_s * 512 / 1.8)
    assert spec.tokens_per_s > 1.4 * plain.tokens_per_s            # memory-bound decode: verifying is cheap


def test_deepseek_v3_mtp_speed_up_is_near_its_report():
    """DeepSeek-V3 (§5.4.3): its MTP module's second token is accepted 85-90% of the time, for
    1.8x the tokens per second. simhw's DeepSeek-V3 FP8 decode on 8 H200s (data-parallel
    attention, batch 64, 8k context) gives 1.6-1.8x over that range."""
    raw = {"model": "deepseek-v3", "mode": "decode", "seq_len": 8192, "micro_batch": 64, "global_batch": 64,
           "dtype": "fp8", "devices": 8, "parallelism": {"tp": 8, "attention_dp": True}, "engine": "vllm-v1",
           "decode": {"context_len": 8192, "new_tokens": 1024}}
    h200 = simhw.load_hw("h200")
    plain = simhw.estimate(workload_from_dict(raw), h200).tokens_per_s
    for a in (0.85, 0.9):
        wl = workload_from_dict({**raw, "decode": {**raw["decode"], "speculative_tokens": 1, "acceptance": a}})
        assert 1.55 < simhw.estimate(wl, h200).tokens_per_s / plain < 1.9


def test_the_drafter_holds_a_layer_of_weights_and_of_cache():
    plain, spec = simhw.estimate(_wl(0), H100).memory, simhw.estimate(_wl(1), H100).memory
    from simhw.workload.builtins import builtin_model
    llama = builtin_model("llama3-8b")
    assert spec.parameters_bytes - plain.parameters_bytes == pytest.approx(
        2 * (llama.layer_params() + 2 * 4096 * 4096))
    assert spec.kv_cache_bytes == pytest.approx(plain.kv_cache_bytes * 33 / 32)


def test_simulation_agrees_with_the_estimate():
    wl = _wl(2)
    assert simhw.simulate(wl, H100).step_time_s == pytest.approx(simhw.estimate(wl, H100).step_time_s, rel=0.01)


@pytest.mark.parametrize("decode, extra, needle", [
    ({"speculative_tokens": 2, "acceptance": 1.0}, {}, "decode.acceptance"),
    ({"speculative_tokens": 2, "acceptance": "high"}, {}, "decode.acceptance"),
    ({"speculative_tokens": -1}, {}, "decode.speculative_tokens"),
    ({"speculative_tokens": 2, "acceptance": 0.5}, {"mode": "prefill"}, "mode: decode"),
])
def test_bad_speculation_is_a_clear_error(decode, extra, needle):
    with pytest.raises(WorkloadError, match=needle.replace(".", r"\.")):
        workload_from_dict({**BASE, **extra, "decode": {**BASE["decode"], **decode}})


def _draft_wl(k=3, **decode):
    raw = {**BASE, "model": "qwen3-32b", "devices": 2, "parallelism": {"tp": 2},
           "decode": {**BASE["decode"], "speculative_tokens": k, "acceptance": 0.7, "draft_model": "qwen3-0.6b",
                      **decode}}
    return workload_from_dict(raw)


def test_a_draft_model_runs_k_decode_steps_and_holds_its_weights_and_cache():
    from simhw.workload.builtins import builtin_model
    wl = _draft_wl(3)
    g = build_graph(wl, compact=True)
    plain = workload_from_dict({**BASE, "model": "qwen3-0.6b", "devices": 2, "parallelism": {"tp": 2}})
    one_step = build_graph(plain, compact=True)
    draft = [op for op in g.ops if op.name.startswith("draft")]
    assert len(draft) == 3 * len(one_step.ops)
    assert sum(op.flops * op.count for op in draft) == pytest.approx(
        3 * sum(op.flops * op.count for op in one_step.ops))
    no_draft = workload_from_dict({**BASE, "model": "qwen3-32b", "devices": 2, "parallelism": {"tp": 2}})
    mem, base = simhw.estimate(wl, H100).memory, simhw.estimate(no_draft, H100).memory
    assert mem.parameters_bytes - base.parameters_bytes == pytest.approx(2 * builtin_model("qwen3-0.6b").params() / 2)
    assert mem.kv_cache_bytes - base.kv_cache_bytes == pytest.approx(simhw.estimate(plain, H100).memory.kv_cache_bytes)
    assert simhw.simulate(wl, H100).step_time_s == pytest.approx(simhw.estimate(wl, H100).step_time_s, rel=0.01)


@pytest.mark.parametrize("change, needle", [
    ({"draft_model": "llama3-8b"}, "vocabulary"),
    ({"draft_model": "qwen3-0.5b"}, "decode.draft_model: unknown model"),
])
def test_bad_draft_models_are_clear_errors(change, needle):
    with pytest.raises(WorkloadError, match=needle):
        _draft_wl(3, **change)
    with pytest.raises(WorkloadError, match="draft_model: a draft model proposes"):
        _draft_wl(0)


def test_decode_placement_counts_the_accepted_tokens_too():
    from simhw.schedule.from_workload import decode_placement, serving_iteration_s
    wl = _draft_wl(3)
    r = decode_placement(wl, H100)
    iteration = serving_iteration_s(wl, H100, r.step_time_s)
    est = simhw.estimate(wl, H100)
    assert iteration == pytest.approx(est.step_time_s, rel=0.005)
    assert r.tokens_per_s * r.step_time_s / iteration == pytest.approx(est.tokens_per_s, rel=0.005)
