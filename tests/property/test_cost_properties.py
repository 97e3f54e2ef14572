"""Invariants of the cost and memory models (DESIGN.md 'How it is checked' 1)."""
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simhw
from simhw.cost.memory import memory_breakdown
from simhw.cost.roofline import op_cost
from simhw.spec.model import DType
from simhw.workload.graph import Op, OpKind, Phase, shape

from tests.helpers import wl

A100 = simhw.load_hw("a100")

gemms = st.builds(
    lambda m, n, k, b: Op("g", OpKind.GEMM, Phase.FWD, 0, 2.0 * m * n * k * b, DType.BF16,
                          weight_bytes=2.0 * k * n * b, input_bytes=2.0 * m * k * b, output_bytes=2.0 * m * n * b,
                          shape=shape(m=m, n=n, k=k, batch=b)),
    st.integers(1, 16384), st.integers(1, 16384), st.integers(1, 16384), st.integers(1, 8))
elementwise = st.builds(
    lambda e: Op("e", OpKind.ELEMENTWISE, Phase.FWD, 0, float(e), DType.BF16, input_bytes=2.0 * e,
                 output_bytes=2.0 * e, shape=shape(elements=e)), st.integers(1, 10**9))
attention = st.builds(
    lambda b, hd, s, kv: Op("a", OpKind.ATTENTION, Phase.FWD, 0, 4.0 * b * hd * s * kv * 128, DType.BF16,
                            input_bytes=2.0 * b * hd * 128 * (s + 2 * kv), output_bytes=2.0 * b * hd * s * 128,
                            shape=shape(batch=b, heads=hd, kv_heads=hd, seq_q=s, seq_kv=kv, head_dim=128,
                                        causal=0.0, flash=1.0)),
    st.integers(1, 64), st.integers(1, 64), st.integers(1, 8192), st.integers(1, 32768))
ops = st.one_of(gemms, elementwise, attention)


def _scaled(hw, bw=1.0, peak=1.0):
    mem = (replace(hw.memory[0], bandwidth_bytes_per_s=hw.memory[0].bandwidth_bytes_per_s * bw),) + hw.memory[1:]
    return replace(hw, memory=mem, peak_flop_per_s={k: v * peak for k, v in hw.peak_flop_per_s.items()})


@settings(max_examples=200, deadline=None)
@given(ops, st.floats(1.0, 10.0), st.floats(1.0, 10.0))
def test_more_bandwidth_or_peak_never_slower(op, bw, peak):
    base = op_cost(op, A100).time_s
    assert op_cost(op, _scaled(A100, bw=bw)).time_s <= base * (1 + 1e-12)
    assert op_cost(op, _scaled(A100, peak=peak)).time_s <= base * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(ops, st.floats(1.0, 10.0), st.floats(1.0, 10.0))
def test_the_power_limit_keeps_more_bandwidth_or_peak_never_slower(op, bw, peak):
    """Held at TDP, a kernel takes body^(2/3) x (energy / budget)^(1/3): still monotone in its body."""
    from simhw.cost.power import power_limited

    base = power_limited(op_cost(op, A100), A100)
    assert base.time_s >= op_cost(op, A100).time_s * (1 - 1e-12)
    for faster in (_scaled(A100, bw=bw), _scaled(A100, peak=peak)):
        assert power_limited(op_cost(op, faster), faster).time_s <= base.time_s * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_time_at_least_the_roofline(op):
    t = op_cost(op, A100).time_s
    floor = max(op.flops / A100.peak(op.dtype), op.bytes / A100.main_memory.bandwidth_bytes_per_s)
    assert t >= floor * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["llama2-7b", "gpt3-175b", "qwen3-0.6b", "gemma2-2b", "llama2-70b"]),
       st.sampled_from(["train", "prefill", "decode"]), st.sampled_from([512, 2048, 8192]),
       st.sampled_from([1, 2, 4]), st.sampled_from(["none", "selective", "full"]),
       st.sampled_from([0, 1, 2, 3]), st.booleans())
def test_memory_parts_non_negative_and_sum_to_peak(model, mode, seq, micro, recompute, zero, flash):
    w = wl(model=model, mode=mode, seq_len=seq, micro_batch=micro, global_batch=micro * 8, devices=8,
           memory={"recompute": recompute, "zero_stage": zero, "flash_attention": flash})
    m = memory_breakdown(w, A100)
    parts = [m.parameters_bytes, m.gradients_bytes, m.optimizer_bytes, m.activations_bytes,
             m.kv_cache_bytes, m.logits_bytes]
    assert all(p >= 0 for p in parts)
    assert sum(parts) == pytest.approx(m.peak_bytes)
    assert m.fits == (m.peak_bytes <= A100.main_memory.capacity_bytes)


def test_recompute_lowers_activation_memory():
    none = memory_breakdown(wl(memory={"recompute": "none", "flash_attention": False}))
    sel = memory_breakdown(wl(memory={"recompute": "selective", "flash_attention": False}))
    full = memory_breakdown(wl(memory={"recompute": "full"}))
    assert full.activations_bytes < sel.activations_bytes < none.activations_bytes


def test_zero_stages_shard_more():
    parts = [memory_breakdown(wl(memory={"zero_stage": z})) for z in range(4)]
    peaks = [p.peak_bytes for p in parts]
    assert peaks == sorted(peaks, reverse=True) and peaks[3] < peaks[0]


@pytest.mark.parametrize("mode", ["train", "prefill", "decode"])
@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_compact_graph_gives_the_same_totals(mode, recompute):
    from simhw.cost.estimate import estimate
    from simhw.workload.transformer import build_graph
    w = wl(model="llama2-13b", mode=mode, devices=16, global_batch=16, micro_batch=2,
           parallelism={"tp": 2, "pp": 4}, memory={"recompute": recompute, "flash_attention": recompute != "selective"})
    full = estimate(w, A100, graph=build_graph(w))
    compact = estimate(w, A100, graph=build_graph(w, compact=True))
    for key in ("step_time_s", "model_flops", "hardware_flops", "energy_j", "eflops"):
        assert getattr(compact, key) == pytest.approx(getattr(full, key), rel=1e-9)
