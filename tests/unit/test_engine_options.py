"""The workload's engine: block replaces the spec's serving-engine overheads (cost/estimate.py)."""
import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict
from simhw.errors import WorkloadError
from simhw.workload.spec import AllReduceKernel

A100 = simhw.load_hw("a100")
BASE = {"model": "llama2-7b", "mode": "decode", "seq_len": 1024, "micro_batch": 8, "global_batch": 8,
        "decode": {"context_len": 1000, "new_tokens": 1}}


def _step(extra=None):
    return simhw.estimate(workload_from_dict({**BASE, **(extra or {})}), A100).step_time_s


def test_engine_block_parses_times():
    wl = workload_from_dict({**BASE, "engine": {"step_overhead": "2 ms", "per_sequence": "100 us"}})
    assert wl.engine.step_overhead_s == pytest.approx(2e-3)
    assert wl.engine.per_sequence_s == pytest.approx(1e-4)
    assert workload_from_dict(BASE).engine.step_overhead_s is None


def test_engine_block_replaces_the_spec_values():
    eff = A100.efficiency
    spec_engine = eff.engine_step_overhead_s + 8 * eff.engine_per_token_s
    zero = _step({"engine": {"step_overhead": 0, "per_sequence": 0}})
    assert _step() == pytest.approx(zero + spec_engine)
    assert _step({"engine": {"step_overhead": "10 ms", "per_sequence": "1 ms"}}) == pytest.approx(zero + 10e-3 + 8e-3)
    # only one of the two given: the other stays the spec's
    assert _step({"engine": {"step_overhead": "10 ms"}}) == pytest.approx(zero + 10e-3 + 8 * eff.engine_per_token_s)


def test_host_dispatch_per_layer_overlaps_the_gpu():
    """An iteration takes step_overhead + max(GPU time, layers x host_per_layer) + per_sequence x b,
    plus one link of the faster chain: a layer starts once dispatched and once the one before it
    ends (the first dispatch when GPU-bound, the last layer's GPU work when host-bound)."""
    wl = workload_from_dict({**BASE, "engine": {"host_per_layer": "1 us"}})
    assert wl.engine.host_per_layer_s == pytest.approx(1e-6)
    gpu_bound = simhw.estimate(wl, A100)
    host_bound = simhw.estimate(workload_from_dict({**BASE, "engine": {"host_per_layer": "5 ms"}}), A100)
    eff = A100.efficiency
    engine = eff.engine_step_overhead_s + 8 * eff.engine_per_token_s
    gpu = gpu_bound.step_time_s - engine - 1e-6                                # GPU-bound: + the first dispatch
    assert host_bound.step_time_s == pytest.approx(engine + 32 * 5e-3 + gpu / 32)   # llama2-7b: 32 layers
    assert gpu_bound.step_time_s < host_bound.step_time_s
    for r in (gpu_bound, host_bound):      # the GPU's wait on the host is engine time in the breakdown
        assert sum(r.time_breakdown_s.values()) == pytest.approx(r.step_time_s, rel=1e-9)
    assert host_bound.time_breakdown_s["engine_overhead"] == pytest.approx(
        engine + 32 * 5e-3 + gpu / 32 - (gpu_bound.step_time_s - gpu_bound.time_breakdown_s["engine_overhead"]),
        rel=1e-6)
    # the GPU draws its static power while it waits: a host-bound step costs more energy
    assert host_bound.energy_j > gpu_bound.energy_j


def test_host_dispatch_does_not_touch_training():
    train = {"model": "llama2-7b", "mode": "train", "seq_len": 1024, "micro_batch": 1, "global_batch": 1}
    a = simhw.estimate(workload_from_dict(train), A100).step_time_s
    b = simhw.estimate(workload_from_dict({**train, "engine": {"host_per_layer": "50 ms"}}), A100).step_time_s
    assert a == b


def test_per_worker_cost_grows_with_the_worker_processes():
    """engine.per_worker: the driver feeds TP x PP - 1 other workers every iteration."""
    dec = {**BASE, "model": "llama2-13b", "devices": 4, "parallelism": {"tp": 4}, "engine": {"host_per_layer": 0}}
    a100 = simhw.load_hw("dgx-a100")

    def step(extra, tp=4):
        wl = {**dec, "devices": tp, "parallelism": {"tp": tp}, "engine": {**dec["engine"], **extra}}
        return simhw.estimate(workload_from_dict(wl), a100).step_time_s

    assert workload_from_dict({**BASE, "engine": {"per_worker": "9 ms"}}).engine.per_worker_s == pytest.approx(9e-3)
    assert step({"per_worker": "9 ms"}) == pytest.approx(step({"per_worker": 0}) + 3 * 9e-3)
    assert step({"per_worker": "9 ms"}, tp=1) == pytest.approx(step({"per_worker": 0}, tp=1))


def test_named_engines():
    from simhw.workload.engines import ENGINES

    v1 = workload_from_dict({**BASE, "engine": "vllm-v1"}).engine
    assert (v1.step_overhead_s, v1.per_sequence_s, v1.host_per_layer_s, v1.per_worker_s) == \
        pytest.approx((0.1e-3, 80e-6, 0.0, 0.4e-3))
    assert v1.all_reduce is AllReduceKernel.CUSTOM
    assert workload_from_dict({**BASE, "engine": "splitwise-eager"}).engine.all_reduce is AllReduceKernel.NCCL
    mixed = workload_from_dict({**BASE, "engine": {"preset": "vllm-0.5.4", "per_sequence": "0.1 ms"}}).engine
    assert mixed.per_sequence_s == pytest.approx(1e-4) and mixed.per_worker_s == pytest.approx(9e-3)
    none = simhw.estimate(workload_from_dict({**BASE, "engine": "none"}), A100)
    assert none.time_breakdown_s["engine_overhead"] == 0.0
    # the shipped specs' defaults are the splitwise-eager profile
    spec = workload_from_dict({**BASE, "engine": "splitwise-eager"})
    assert simhw.estimate(spec, A100).step_time_s == pytest.approx(_step())
    eff = A100.efficiency
    e = ENGINES["splitwise-eager"]
    assert (eff.engine_step_overhead_s, eff.engine_per_token_s, eff.engine_host_per_layer_s) == pytest.approx(
        tuple(workload_from_dict({**BASE, "engine": dict(e)}).engine.__getattribute__(f) for f in
              ("step_overhead_s", "per_sequence_s", "host_per_layer_s")))


def test_engine_all_reduce_kernel_prices_tensor_parallel_decode():
    """engine.all_reduce: custom prices the TP all-reduces as the engine's own NVLink kernel
    (cost/comm.py custom_all_reduce_time_s), a few microseconds each where NCCL's take 12-20, so a
    TP 8 decode step of 80 layers (160 all-reduces of a few KiB) is milliseconds shorter; training
    keeps NCCL's; a bad value is a clear error."""
    dec = {**BASE, "model": "llama2-70b", "devices": 8, "parallelism": {"tp": 8}, "micro_batch": 1,
           "global_batch": 1}
    node = simhw.load_hw("dgx-a100")

    def comm(kernel):
        r = simhw.estimate(workload_from_dict({**dec, "engine": {"preset": "none", "all_reduce": kernel}}), node)
        return r.time_breakdown_s["communication"], r.step_time_s

    (c_nccl, t_nccl), (c_custom, t_custom) = comm("nccl"), comm("custom")
    assert c_custom < 0.5 * c_nccl and t_nccl - t_custom == pytest.approx(c_nccl - c_custom, rel=0.05)
    with pytest.raises(WorkloadError, match="engine.all_reduce.*nccl, custom"):
        workload_from_dict({**dec, "engine": {"all_reduce": "ring"}})


def test_engine_by_name_from_the_command_line():
    from simhw.workload.from_yaml import apply_overrides

    raw = apply_overrides({**BASE, "engine": "vllm-v1"}, ["engine.per_sequence=100 us"], "x")
    assert workload_from_dict(raw).engine.per_sequence_s == pytest.approx(1e-4)
    raw = apply_overrides(dict(BASE), ["engine=vllm-0.5.4"], "x")
    assert workload_from_dict(raw).engine.per_worker_s == pytest.approx(9e-3)


@pytest.mark.parametrize("engine", ["splitwise-eager", "vllm-v1", {"host_per_layer": "2 ms"}])
def test_simulation_agrees_with_the_estimate_on_serving_steps(engine):
    """The event simulation runs the engine's host thread (schedule, then dispatch layer by layer)
    beside the GPU; its decode step matches the analytical max(GPU, host) to a few per cent."""
    from simhw.sim.run import simulate_step

    wl = workload_from_dict({**BASE, "model": "llama2-13b", "micro_batch": 16, "global_batch": 16, "engine": engine})
    sim, est = simulate_step(wl, A100), simhw.estimate(wl, A100)
    assert sim.step_time_s == pytest.approx(est.step_time_s, rel=0.03)
    assert sim.engine_s > 0 and sim.exposed_transfer_s == 0.0
    assert sim.utilisation["host"] > 0
    assert any(t.resource == "host" and t.name.startswith("dispatch") for t in sim.tasks)
