"""memory.offload_layers: Megatron's CPU activation offloading (--cpu-offloading-num-layers N)."""
from __future__ import annotations

from dataclasses import replace

import pytest

import simhw
from simhw.cli import main
from simhw.cost.memory import activation_bytes_per_layer
from simhw.workload.from_yaml import workload_from_dict

BASE = {"name": "off", "model": "llama2-7b", "mode": "train", "seq_len": 4096, "micro_batch": 2,
        "global_batch": 16, "devices": 8, "dtype": "bf16", "optimizer": "adamw", "framework": "fused",
        "parallelism": {"tp": 1, "pp": 1}, "memory": {"zero_stage": 1}}


def _wl(n: int, **changes):
    raw = dict(BASE, **changes)
    raw["memory"] = dict(raw["memory"], offload_layers=n)
    return workload_from_dict(raw, "test")


def test_offloaded_layers_leave_the_device_but_one_in_flight():
    hw = simhw.load_hw("dgx-h100")
    kept, off = simhw.estimate(_wl(0), hw).memory, simhw.estimate(_wl(16), hw).memory
    layer = activation_bytes_per_layer(_wl(16))
    assert off.activations_bytes == pytest.approx(kept.activations_bytes - 15 * layer)
    assert off.host_activations_bytes == pytest.approx(16 * layer) and kept.host_activations_bytes == 0
    assert off.peak_bytes == pytest.approx(kept.peak_bytes - 15 * layer)     # the host's share is not in the peak


def test_copies_over_pcie_show_and_grow_with_the_layers_offloaded():
    hw = simhw.load_hw("dgx-h100")
    base = simhw.estimate(_wl(0), hw)
    shown = [simhw.estimate(_wl(n), hw).time_breakdown_s["offload"] for n in (4, 16, 31)]
    assert base.time_breakdown_s["offload"] == 0
    # a layer's copy (~1 GiB over PCIe 5 at host_copy_fraction) hides behind 8 layers' work (4 of 32
    # offloaded), not behind 2 (16) or about 1 (31)
    assert shown[0] == 0 < shown[1] < shown[2]
    one = simhw.estimate(_wl(16), hw)
    assert one.step_time_s == pytest.approx(base.step_time_s + one.time_breakdown_s["offload"], rel=1e-9)
    assert one.energy_j > base.energy_j


def test_nvlink_c2c_hides_the_published_llama3_70b_gb200_offload():
    """NVIDIA's GB200 FP8-CS recipe for Llama3-70B (FSDP, micro-batch 2) offloads 40 of 80 layers: over
    NVLink-C2C each layer's copy fits behind two layers' work, and the offloaded layers are what
    brings the activations near the 184 GiB the GPU has (without: 290 GiB)."""
    raw = {"name": "l70", "model": "llama3-70b", "mode": "train", "seq_len": 8192, "micro_batch": 2,
           "global_batch": 256, "devices": 64, "dtype": "bf16", "optimizer": "adamw", "framework": "fused",
           "precision": "fp8-current", "parallelism": {"tp": 1, "pp": 1}, "memory": {"zero_stage": 3}}
    hw = simhw.load_hw("gb200-nvl72")
    plain = simhw.estimate(workload_from_dict(raw, "t"), hw)
    raw["memory"]["offload_layers"] = 40
    off = simhw.estimate(workload_from_dict(raw, "t"), hw)
    assert off.time_breakdown_s["offload"] == 0 and off.step_time_s == pytest.approx(plain.step_time_s)
    assert plain.memory.activations_bytes > 2**30 * 280
    assert off.memory.activations_bytes < plain.memory.activations_bytes * 0.52


def test_simulation_replays_the_offload():
    hw = simhw.load_hw("dgx-h100")
    wl = _wl(16)
    est = simhw.estimate(wl, hw)
    sim = simhw.simulate(wl, hw)
    assert sim.peak_memory_bytes["host"] == pytest.approx(est.memory.host_activations_bytes, rel=0.01)
    # the simulated compute waits for each copy by its layer window, as Transformer Engine's does,
    # so the device holds what the estimate says; the copies' exposed time agrees too
    assert sim.peak_memory_bytes["device"] == pytest.approx(est.memory.peak_bytes, rel=0.03)
    assert sim.step_time_s == pytest.approx(est.step_time_s, rel=0.05)
    four = _wl(4)
    assert simhw.simulate(four, hw).step_time_s == pytest.approx(simhw.estimate(four, hw).step_time_s, rel=0.03)


@pytest.mark.parametrize("changes,words", [
    ({"parallelism": {"tp": 1, "pp": 2}}, "pipeline parallelism"),
    ({"mode": "prefill"}, "only training"),
    ({}, "not below the model's 32 layers"),
])
def test_offload_outside_its_reach_is_a_one_line_error(tmp_path, capsys, changes, words):
    import yaml
    raw = dict(BASE, **changes)
    raw["memory"] = dict(raw["memory"], offload_layers=32 if not changes else 4)
    if raw["mode"] != "train":
        raw.pop("optimizer")
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["estimate", str(path), "--hw", "dgx-h100"]) == 2
    err = capsys.readouterr().err
    assert "memory.offload_layers" in err and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_workload_plan_names_the_offloaded_layers():
    from simhw.schedule.plan import Action, workload_plan
    plan = workload_plan(_wl(3))
    assert "3 layers offloaded" in plan.name
    assert plan.policy(2, "mlp_act", 32).action is Action.CPU and plan.policy(3, "mlp_act", 32).action is Action.KEEP
    assert workload_plan(replace(_wl(3), memory=replace(_wl(3).memory, offload_layers=0))).layers == {}


def test_plan_offloads_where_nvlink_c2c_hides_the_copies():
    """Llama3-70B FP8 with FSDP on 64 GB200s: NVIDIA's recipe offloads 40 layers at micro-batch 2
    rather than recompute; simhw's plan offloads just enough layers (never under a pipeline), and each
    such candidate reproduces as an estimate that fits."""
    from simhw.cost.plan import _expand, plan
    from simhw.workload.from_yaml import load_workload
    raw = ["model=llama3-70b", "seq_len=8192", "global_batch=256", "devices=64", "precision=fp8-current",
           "memory.zero_stage=3", "memory.offload_layers=16"]       # the workload's own offload is replaced
    result = plan("workloads/llama2-7b-train.yaml", "gb200-nvl72", raw)
    best = dict(result.ranked[0].settings)
    assert best.get("memory.offload_layers", 0) > 0 and best["memory.recompute"] == "none"
    offloading = [c for c in result.ranked if dict(c.settings).get("memory.offload_layers", 0)]
    assert all(dict(c.settings)["parallelism.pp"] == 1 for c in offloading)
    assert any(dict(c.settings)["parallelism.pp"] > 1 for c in result.ranked)
    c = offloading[0]
    sets = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in _expand(dict(c.settings)).items()]
    wl = load_workload("workloads/llama2-7b-train.yaml", raw + sets)
    hw = simhw.load_hw("gb200-nvl72")
    assert simhw.estimate(wl, hw).memory.fits
    assert simhw.estimate(wl, hw).step_time_s == pytest.approx(c.result.step_time_s)
    fewer = replace(wl, memory=replace(wl.memory, offload_layers=wl.memory.offload_layers - 1))
    assert not simhw.estimate(fewer, hw).memory.fits        # just enough
    # eight DGX B200s copy over PCIe: there recompute ranks ahead of offloading
    pcie = plan("workloads/llama2-7b-train.yaml", "dgx-b200", raw)
    assert not dict(pcie.ranked[0].settings).get("memory.offload_layers", 0)
