"""FlexGen-style decode offload LP: all on GPU, CPU offload, NVMe, infeasibility."""
from dataclasses import replace

import pytest

pytest.importorskip("highspy")
pytest.importorskip("pyomo")

from simhw.errors import InfeasibleError  # noqa: E402
from simhw.schedule import inference as inf  # noqa: E402
from simhw.schedule.inference import InferenceData  # noqa: E402
from simhw.schedule.solve import SolveStatus  # noqa: E402

GB = 1e9
BASE = InferenceData(weights_bytes=14 * GB, kv_cache_bytes=8 * GB, activation_bytes=0.1 * GB,
                     compute_time_s=0.005, tokens_per_step=32, num_layers=32, gpu_capacity_bytes=80 * GB,
                     cpu_capacity_bytes=500 * GB, hbm_bandwidth_bytes_per_s=2e12,
                     pcie_bandwidth_bytes_per_s=25 * GB)


def test_everything_fits_on_gpu():
    r = inf.solve(BASE)
    assert r.status is SolveStatus.OPTIMAL
    for f in (r.weights, r.kv_cache, r.activations):
        assert f.gpu == pytest.approx(1.0)
    assert r.step_time_s == pytest.approx(22.1 * GB / 2e12)  # HBM-bound decode
    assert r.binding == "HBM"
    assert r.tokens_per_s == pytest.approx(32 / r.step_time_s)
    assert r.gpu_bytes == pytest.approx(22.1 * GB)


def test_compute_bound_when_compute_dominates():
    r = inf.solve(replace(BASE, compute_time_s=0.05))
    assert r.step_time_s == pytest.approx(0.05) and r.binding == "compute"


def test_needs_cpu_offload():
    r = inf.solve(replace(BASE, gpu_capacity_bytes=20 * GB))
    off = 22.1 * GB - 20 * GB  # resident + 2/32 of the offloaded bytes must fit: x + x/16 = 2.1 + ...
    # GPU holds (22.1 − y) + (2/32)·y = 20  =>  y = 2.1 / (1 − 1/16) = 2.24 GB cross PCIe every step
    y = off / (1 - 2 / 32)
    assert r.binding == "PCIe"
    assert r.step_time_s == pytest.approx(y / (25 * GB), rel=1e-6)
    assert r.gpu_bytes == pytest.approx(20 * GB, rel=1e-6)
    assert r.cpu_bytes == pytest.approx(y, rel=1e-6)
    moved = (1 - r.weights.gpu) * 14 * GB + (1 - r.kv_cache.gpu) * 8 * GB + (1 - r.activations.gpu) * 0.1 * GB
    assert moved == pytest.approx(y, rel=1e-6)


def test_nvme_when_cpu_is_full():
    data = replace(BASE, weights_bytes=140 * GB, kv_cache_bytes=200 * GB, cpu_capacity_bytes=100 * GB,
                   nvme_capacity_bytes=2000 * GB, nvme_bandwidth_bytes_per_s=6 * GB)
    r = inf.solve(data)
    assert r.nvme_bytes > 0 and r.binding == "NVMe"
    assert r.gpu_bytes <= 80 * GB * (1 + 1e-9) and r.cpu_bytes <= 100 * GB * (1 + 1e-9)
    assert r.step_time_s == pytest.approx(r.nvme_bytes / (6 * GB), rel=1e-6)
    # a lower bound: whatever exceeds GPU + CPU capacity must come from NVMe every step
    assert r.step_time_s >= (340.1 - 180) * GB / (6 * GB) * (1 - 1e-9)


@pytest.mark.parametrize("bw", [5 * GB, 10 * GB, 25 * GB, 50 * GB])
def test_more_pcie_bandwidth_never_slows(bw):
    slow = inf.solve(replace(BASE, gpu_capacity_bytes=12 * GB, pcie_bandwidth_bytes_per_s=bw))
    fast = inf.solve(replace(BASE, gpu_capacity_bytes=12 * GB, pcie_bandwidth_bytes_per_s=2 * bw))
    assert fast.step_time_s <= slow.step_time_s * (1 + 1e-9)


def test_infeasible_names_memory_and_least_size():
    with pytest.raises(InfeasibleError, match=r"GPU memory is binding.*1\.381e\+09"):
        inf.solve(replace(BASE, gpu_capacity_bytes=1 * GB))  # 2/32 of 22.1 GB streaming buffer
    with pytest.raises(InfeasibleError, match=r"CPU memory needs at least"):
        inf.solve(replace(BASE, gpu_capacity_bytes=10 * GB, cpu_capacity_bytes=1 * GB))
