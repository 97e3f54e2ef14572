"""Token-wise activation LP (MEMO §4.1 generalised): MEMO special case, grid brute force, objectives."""
import itertools
from dataclasses import replace

import pytest

pytest.importorskip("highspy")
pytest.importorskip("pyomo")

from simhw.errors import InfeasibleError  # noqa: E402
from simhw.schedule import tokenwise as tw  # noqa: E402
from simhw.schedule.solve import SolveStatus  # noqa: E402
from simhw.schedule.tokenwise import (CostObjective, LayerActivations, MemoLPData, Placement,  # noqa: E402
                                      SavedTensorClass, TensorDecision, TokenwiseData)

GB = 1e9
P = Placement


def memo(t_fwd_s, host_bytes=500 * GB, n=32):
    return MemoLPData(input_bytes=2 * GB, attn_bytes=2 * GB, others_bytes=28 * GB,
                      pcie_bandwidth_bytes_per_s=25 * GB, layer_forward_time_s=t_fwd_s, num_layers=n,
                      host_capacity_bytes=host_bytes)


def memo_as_general(d: MemoLPData, recompute_s=0.3) -> TokenwiseData:
    layer = LayerActivations(d.layer_forward_time_s, 2 * d.layer_forward_time_s, (
        SavedTensorClass("input", d.input_bytes, 0.0, frozenset({P.CPU})),
        SavedTensorClass("attn", d.attn_bytes, 0.0, frozenset({P.CPU})),
        SavedTensorClass("others", d.others_bytes, recompute_s, frozenset({P.CPU, P.RECOMPUTE}))))
    return TokenwiseData(layers=(layer,) * d.num_layers, device_capacity_bytes=10_000 * GB,
                         host_capacity_bytes=d.host_capacity_bytes,
                         pcie_bandwidth_bytes_per_s=d.pcie_bandwidth_bytes_per_s,
                         allow_exposed_transfer=False)


# (T_fwd, host bytes) -> which constraint binds in MEMO's LP
REGIMES = [(0.6, 500 * GB, "PCIe bandwidth"), (0.4, 500 * GB, "PCIe bandwidth"),
           (1.0, 500 * GB, "host memory"),
           (2.0, 5000 * GB, "alpha <= 1"), (2.0, 500 * GB, "host memory")]


@pytest.mark.parametrize("t_fwd,host,binding", REGIMES)
def test_memo_lp_matches_closed_form(t_fwd, host, binding):
    d = memo(t_fwd, host)
    r = tw.solve_memo(d)
    assert r.status is SolveStatus.OPTIMAL
    assert r.alpha == pytest.approx(tw.memo_alpha_closed_form(d), abs=1e-7)
    assert r.binding == binding


@pytest.mark.parametrize("t_fwd,host,binding", REGIMES)
def test_general_model_reduces_to_memo(t_fwd, host, binding):
    d = memo(t_fwd, host)
    alpha = tw.memo_alpha_closed_form(d)
    r = tw.solve(memo_as_general(d))
    swapped = [x for x in r.decisions if x.tensor == "others" and x.layer < d.num_layers - 2]
    assert sum(x.cpu_frac for x in swapped) / len(swapped) == pytest.approx(alpha, abs=1e-6)
    assert r.recompute_time_s == pytest.approx((d.num_layers - 2) * (1 - alpha) * 0.3, rel=1e-6)
    assert r.exposed_transfer_time_s == pytest.approx(0.0, abs=1e-9)
    assert all(x.keep_frac == 1.0 for x in r.decisions if x.layer >= d.num_layers - 2)


def test_memo_infeasible_names_resource():
    with pytest.raises(InfeasibleError, match="PCIe bandwidth"):
        tw.solve_memo(memo(0.1))
    with pytest.raises(InfeasibleError, match="host memory.*1.2e\\+11"):
        tw.solve_memo(memo(2.0, host_bytes=50 * GB))


def _small(objective=CostObjective.TIME, **kw):
    a = SavedTensorClass("a", 6 * GB, 0.08, frozenset({P.KEEP, P.CPU, P.RECOMPUTE}))
    b = SavedTensorClass("b", 4 * GB, 0.5, frozenset({P.CPU, P.NVME, P.RECOMPUTE}))
    base = dict(layers=(LayerActivations(0.2, 0.4, (a, b)),), device_capacity_bytes=3 * GB,
                host_capacity_bytes=5 * GB, pcie_bandwidth_bytes_per_s=25 * GB, nvme_capacity_bytes=100 * GB,
                nvme_bandwidth_bytes_per_s=5 * GB, device_power_w=400.0, pcie_energy_j_per_byte=1e-10,
                nvme_energy_j_per_byte=3e-10, usd_per_s=0.001, objective=objective, buffer_layers=0)
    base.update(kw)
    return TokenwiseData(**base)


def _simplex(step):
    k = round(1 / step)
    return [(i * step, j * step, (k - i - j) * step) for i in range(k + 1) for j in range(k + 1 - i)]


@pytest.mark.parametrize("objective", list(CostObjective))
@pytest.mark.parametrize("kw", [{}, {"pcie_bandwidth_bytes_per_s": 8 * GB}, {"host_capacity_bytes": 1 * GB},
                                {"device_capacity_bytes": 0.5 * GB, "allow_exposed_transfer": False}])
def test_lp_beats_grid_brute_force(objective, kw):
    data = _small(objective, **kw)
    key = {CostObjective.TIME: "extra_time_s", CostObjective.ENERGY: "energy_j",
           CostObjective.DOLLARS: "cost_usd"}[objective]
    r = tw.solve(data)
    metrics = tw.evaluate_policy(data, r.decisions)
    assert metrics[key] == pytest.approx(r.objective_value, rel=1e-6, abs=1e-12)
    assert r.device_bytes <= data.device_capacity_bytes * (1 + 1e-6)
    assert r.host_bytes <= data.host_capacity_bytes * (1 + 1e-6)
    best = float("inf")
    for (ka, ca, ra), (cb, nb, rb) in itertools.product(_simplex(0.05), _simplex(0.05)):
        dec = (TensorDecision(0, "a", ka, ca, 0.0, ra), TensorDecision(0, "b", 0.0, cb, nb, rb))
        m = tw.evaluate_policy(data, dec)
        if (m["device_bytes"] > data.device_capacity_bytes or m["host_bytes"] > data.host_capacity_bytes
                or (not data.allow_exposed_transfer and m["exposed_transfer_time_s"] > 1e-12)):
            continue
        best = min(best, m[key])
    assert r.objective_value <= best + 1e-9 * max(1.0, abs(best))
    assert r.objective_value >= best - 0.1 * abs(best) - 1e-9  # the grid is 5% coarse


def test_energy_and_time_objectives_disagree_when_transfers_are_costly():
    cls = SavedTensorClass("x", 1 * GB, 0.01, frozenset({P.CPU, P.RECOMPUTE}))
    base = TokenwiseData(layers=(LayerActivations(1.0, 2.0, (cls,)),), device_capacity_bytes=1 * GB,
                         host_capacity_bytes=10 * GB, pcie_bandwidth_bytes_per_s=25 * GB,
                         device_power_w=300.0,
                         pcie_energy_j_per_byte=1e-8, buffer_layers=0)
    by_time = tw.solve(base)
    by_energy = tw.solve(replace(base, objective=CostObjective.ENERGY))
    assert by_time.decisions[0].cpu_frac == pytest.approx(1.0)  # hidden transfer costs no time
    assert by_energy.decisions[0].recompute_frac == pytest.approx(1.0)  # 3 J recompute < 20 J transfer
    assert by_energy.energy_j == pytest.approx(300.0 * 0.01)


def test_exposed_transfer_is_charged():
    cls = SavedTensorClass("x", 10 * GB, 100.0, frozenset({P.CPU, P.KEEP}))
    data = TokenwiseData(layers=(LayerActivations(0.2, 0.3, (cls,)),), device_capacity_bytes=0.0,
                         host_capacity_bytes=100 * GB, pcie_bandwidth_bytes_per_s=10 * GB, buffer_layers=0)
    r = tw.solve(data)
    assert r.decisions[0].cpu_frac == pytest.approx(1.0)
    assert r.exposed_transfer_time_s == pytest.approx((1.0 - 0.2) + (1.0 - 0.3))


def test_nvme_takes_the_overflow_of_host_memory():
    cls = SavedTensorClass("x", 10 * GB, 100.0, frozenset({P.CPU, P.NVME, P.RECOMPUTE}))
    data = TokenwiseData(layers=(LayerActivations(1.0, 2.0, (cls,)),) * 3, device_capacity_bytes=20 * GB,
                         host_capacity_bytes=6 * GB, pcie_bandwidth_bytes_per_s=25 * GB,
                         nvme_capacity_bytes=100 * GB, nvme_bandwidth_bytes_per_s=12 * GB, buffer_layers=2,
                         device_power_w=400.0, nvme_energy_j_per_byte=1e-10, objective=CostObjective.ENERGY)
    r = tw.solve(data)  # NVMe costs energy, so host memory fills first
    assert r.host_bytes == pytest.approx(6 * GB)
    assert r.nvme_bytes == pytest.approx(4 * GB)
    assert r.recompute_time_s == pytest.approx(0.0, abs=1e-9)
    assert r.buffer_bytes == pytest.approx(20 * GB)


def test_infeasible_reports_binding_resource_and_least_memory():
    cls = SavedTensorClass("x", 10 * GB, 0.0, frozenset({P.KEEP, P.CPU}))
    data = TokenwiseData(layers=(LayerActivations(1.0, 2.0, (cls,)),) * 4, device_capacity_bytes=25 * GB,
                         host_capacity_bytes=100 * GB, pcie_bandwidth_bytes_per_s=25 * GB)
    with pytest.raises(InfeasibleError, match="device memory.*2e\\+10 bytes"):
        tw.solve(replace(data, device_capacity_bytes=15 * GB))  # below the two rotating buffers
    with pytest.raises(InfeasibleError) as err:  # 20 GB offloadable, 5 GB fit next to the buffers
        tw.solve(replace(data, host_capacity_bytes=1 * GB))
    assert "device memory needs at least 3.9e+10 bytes" in str(err.value)
    assert "host memory needs at least 1.5e+10 bytes" in str(err.value)
    with pytest.raises(InfeasibleError, match="device memory is binding.*needs at least 3.8e\\+10"):
        tw.solve(replace(data, device_capacity_bytes=20 * GB, pcie_bandwidth_bytes_per_s=1 * GB,
                         allow_exposed_transfer=False))  # 1 GB per layer hides; keep 2 × 9 GB
    cpu_only = SavedTensorClass("x", 10 * GB, 0.0, frozenset({P.CPU}))
    with pytest.raises(InfeasibleError, match="bandwidth is binding"):
        tw.solve(replace(data, layers=(LayerActivations(1.0, 2.0, (cpu_only,)),) * 4,
                         pcie_bandwidth_bytes_per_s=1 * GB, allow_exposed_transfer=False))
