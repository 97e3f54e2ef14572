"""Pipeline stages with unequal layer counts (pp does not divide the layers): the first and last
stages, which also run the embedding and the output layer, get one layer fewer (Llama 3, arXiv
2407.21783 §3.3.2: 126 layers on 16 stages). Estimate, op graph and simulation agree on them."""
from dataclasses import replace

import pytest

import simhw
from simhw.sim.run import simulate_step
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.spec import stage_layers, stage_starts
from simhw.workload.transformer import build_graph


def test_llama3_405b_stages():
    assert stage_layers(126, 16) == (7,) + (8,) * 14 + (7,)
    assert stage_layers(32, 4) == (8, 8, 8, 8)
    assert stage_layers(61, 16)[:3] == (3, 3, 4) and sum(stage_layers(61, 16)) == 61
    assert stage_starts(10, 4) == (0, 2, 5, 8)


def _wl(layers, pp, schedule="1f1b", interleave=1, **extra):
    return workload_from_dict({"model": {"base": "llama2-7b", "layers": layers}, "mode": "train", "seq_len": 2048,
                               "micro_batch": 1, "global_batch": 4 * pp, "devices": pp,
                               "parallelism": {"pp": pp, "schedule": schedule, "interleave": interleave}, **extra})


@pytest.mark.parametrize("layers, pp, schedule, v", [(10, 4, "1f1b", 1), (10, 4, "zb-h1", 1), (13, 4, "gpipe", 1),
                                                     (7, 3, "1f1b", 1), (10, 2, "interleaved", 2),
                                                     (13, 4, "interleaved", 2), (15, 3, "interleaved", 2)])
def test_estimate_and_simulation_agree_on_uneven_stages(layers, pp, schedule, v):
    wl = _wl(layers, pp, schedule, v)
    full, compact = build_graph(wl), build_graph(wl, compact=True)
    assert sum(o.flops * o.count for o in compact.ops) == pytest.approx(sum(o.flops * o.count for o in full.ops),
                                                                          rel=1e-12)
    hw = simhw.load_hw("a100")
    est, sim = simhw.estimate(wl, hw), simulate_step(wl, hw)
    # within 2%: Σ t_s + (m - 1) max t_s is exact for a heavier last stage, 1.2% long for 7 layers on
    # 3 stages, whose middle stage is half again as long as the others; interleaved uneven chunks
    # (13 layers in 8 chunks of 1-2) come within 2.2%
    assert sim.step_time_s == pytest.approx(est.step_time_s, rel=0.025 if v > 1 else 0.02)
    if schedule == "1f1b":   # the second stage holds 3 layers x (p - 1) micro-batches, more than the first's 2 x p
        assert sim.peak_memory_bytes["device"] == pytest.approx(est.memory.peak_bytes, rel=0.01)
    if v > 1:                # the smaller bubble
        assert est.step_time_s < simhw.estimate(_wl(layers, pp), hw).step_time_s


def test_llama3_405b_on_16k_gpus_runs_as_the_paper_split_it():
    """TP 8, PP 16, DP 128 with 8k sequences and 16M-token batches (Llama 3 §3.3.2): priced now,
    where pp = 16 used to be an error for 126 layers; the activations of a full 8-layer stage set
    the peak."""
    wl = workload_from_dict({"model": "llama3.1-405b", "mode": "train", "seq_len": 8192, "micro_batch": 1,
                             "global_batch": 2048, "devices": 16384,
                             "parallelism": {"tp": 8, "pp": 16, "sp": True}, "memory": {"zero_stage": 1}})
    est = simhw.estimate(wl, simhw.load_hw("dgx-h100"))
    assert est.memory.fits and 0.2 < est.mfu < 0.5
    even = replace(wl, model=replace(wl.model, layers=128))
    assert est.memory.activations_bytes < simhw.estimate(even, simhw.load_hw("dgx-h100")).memory.activations_bytes


def test_uneven_interleaved_chunks_go_round_the_devices():
    """DeepSeek-V3's 61 layers on pp 4 x 4 chunks (Megatron-Bridge's GB200 layout): 16 chunks of 3-4
    layers, the first and last one lighter, chunk c on device c mod 4."""
    from simhw.workload.spec import device_layers
    held = device_layers(61, 4, 4)
    assert sorted(i for d in held for i in d) == list(range(61))
    chunks = stage_layers(61, 16)
    starts = stage_starts(61, 16)
    for c, (first, count) in enumerate(zip(starts, chunks)):
        assert set(range(first, first + count)) <= set(held[c % 4])
    assert stage_layers(61, 4, 4) == tuple(len(d) for d in held) and max(chunks) == 4 and chunks[0] == 3
    assert device_layers(32, 4, 2) == tuple(tuple(range(4 * d, 4 * d + 4)) + tuple(range(16 + 4 * d, 20 + 4 * d))
                                            for d in range(4))


def test_interleaving_needs_a_layer_per_chunk():
    with pytest.raises(simhw.errors.WorkloadError, match="give each chunk at least one layer"):
        _wl(6, 2, "interleaved", 4)
