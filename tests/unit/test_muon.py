"""The Muon optimizer (optimizer: muon): its state (momentum for the layers' matrices, AdamW for the
embedding and output layer), its Newton-Schulz GEMMs split over the data-parallel owners, and its
small step-time overhead."""
import pytest

from simhw.cost.estimate import estimate
from simhw.cost.memory import memory_breakdown
from simhw.spec.load import load_hw
from simhw.workload.from_yaml import load_workload
from simhw.workload.graph import Phase
from simhw.workload.transformer import build_graph

TRAIN = "workloads/llama2-7b-train.yaml"       # 8 GPUs, dp 8, ZeRO-1


def test_muon_keeps_one_moment_for_the_matrices_and_adamw_state_for_embedding_and_head():
    wl = load_workload(TRAIN, ["optimizer=muon"])
    m = wl.model
    layers, other = m.layers * m.layer_params(), m.embedding_params() + m.head_params()
    assert memory_breakdown(wl).optimizer_bytes == pytest.approx((8 * layers + 12 * other) / 8, rel=1e-9)
    adamw = memory_breakdown(load_workload(TRAIN, ["optimizer=adamw"])).optimizer_bytes
    assert memory_breakdown(wl).optimizer_bytes < 0.7 * adamw


def test_newton_schulz_flops_of_every_weight_matrix():
    """Five quintic steps of 4 m^2 n + 2 m^3 FLOPs on each m x n (m <= n) weight matrix, all on the
    one rank of a single-GPU run."""
    wl = load_workload(TRAIN, ["optimizer=muon", "devices=1", "global_batch=2", "memory.zero_stage=0"])
    h, f = wl.model.hidden, wl.model.ffn
    per_layer = sum(4 * a * a * b + 2 * a ** 3 for a, b in ((h, 3 * h), (h, h), (h, 2 * f), (h, f)))
    ns = [op for op in build_graph(wl).ops if op.name.startswith("muon_")]
    assert all(op.phase is Phase.OPTIMIZER for op in ns)
    assert sum(op.flops * op.count for op in ns) == pytest.approx(5 * per_layer * wl.model.layers)
    # eight data-parallel owners share the iterations
    eight = [op for op in build_graph(load_workload(TRAIN, ["optimizer=muon"])).ops if op.name.startswith("muon_")]
    assert sum(op.flops * op.count for op in eight) == pytest.approx(5 * per_layer * wl.model.layers / 8)


@pytest.mark.parametrize("framework", ["fused", "eager"])
def test_muon_costs_a_few_percent_over_adamw(framework):
    """DMuon's owner-centric Muon runs about 2% over AdamW per step on average, and Moonlight reports
    1-3% of the forward-backward time for its Distributed Muon at scale (Liu et al. 2025)."""
    h100 = load_hw("dgx-h100")
    t = {o: estimate(load_workload(TRAIN, [f"optimizer={o}", f"framework={framework}"]), h100).step_time_s
         for o in ("adamw", "muon")}
    assert 1.0 < t["muon"] / t["adamw"] < 1.04


@pytest.mark.parametrize("extra", [[], ["parallelism.pp=2", "parallelism.dp=4"]])
def test_the_simulation_runs_the_iterations_as_the_estimate_does(extra):
    """The Newton-Schulz GEMMs run once per step after the pipeline drains, each stage's device on
    its own layers' matrices."""
    from simhw import simulate
    h100 = load_hw("dgx-h100")
    wl = load_workload(TRAIN, ["optimizer=muon", *extra])
    assert simulate(wl, h100).step_time_s == pytest.approx(estimate(wl, h100).step_time_s, rel=0.02)
    adamw = load_workload(TRAIN, ["optimizer=adamw", *extra])
    assert simulate(wl, h100).step_time_s > simulate(adamw, h100).step_time_s
