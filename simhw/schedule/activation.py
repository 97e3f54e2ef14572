"""Activation policy for a workload: feed the token-wise LP (tokenwise.py) from the cost and
memory models, map its fractions back to a frozen :class:`~simhw.schedule.plan.Plan`, and replay
the plan in the event simulation (sim/run.py) so the model's estimate stands next to a simulated one.

Inputs per layer: forward and backward seconds and the producer time of each saved-tensor class
(sim/run.py: layer_costs), saved bytes per class (cost/memory.py: saved_tensor_bytes, no
recompute), device memory left after parameters, gradients and optimizer state, the device's
share of host memory and NVMe, the host link (pinned copy efficiency included) and the drives.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cost.memory import memory_breakdown, saved_tensor_bytes
from ..errors import InfeasibleError
from ..spec.model import NodeSpec
from ..workload.spec import Mode, Recompute, Workload
from .plan import Action, Plan, TensorPolicy

OBJECTIVES = ("time", "energy", "cost")


@dataclass(frozen=True)
class ActivationSchedule:
    plan: Plan
    objective: str
    predicted_extra_s: float          # the LP's extra time per micro-batch over keeping everything
    predicted_step_s: float           # estimate: simulated no-offload step + extra per micro-batch
    simulated_step_s: float           # the plan replayed in the event simulation
    device_bytes: float
    host_bytes: float
    nvme_bytes: float
    binding: str
    mip_gap: float | None
    solve_time_s: float


def schedule_activations(wl: Workload, hw, objective: str = "time", device_memory_bytes: float | None = None,
                         host_memory_bytes: float | None = None, time_limit_s: float = 30.0) -> ActivationSchedule:
    from ..cost.comm import host_link_bytes_per_s
    from ..sim.run import layer_costs, memory_pools, simulate_step
    from . import tokenwise as tw

    if wl.mode is not Mode.TRAIN or wl.parallelism.pp > 1:
        raise InfeasibleError("the activation policy optimises single-stage training workloads; use "
                              "pp = 1 (pipeline partitioning is a separate model) or mode: train.")
    costs = layer_costs(wl, hw)
    device = hw.device if isinstance(hw, NodeSpec) else hw
    dev_cap, host_cap, nvme_cap = memory_pools(hw, wl, device_memory_bytes, host_memory_bytes)
    mem = memory_breakdown(wl, hw)
    static = mem.parameters_bytes + mem.gradients_bytes + mem.optimizer_bytes + mem.logits_bytes
    if static >= dev_cap:
        raise InfeasibleError(f"device memory is binding: parameters, gradients, optimizer state and logits "
                              f"need {static / 2**30:.1f} GiB of the device's {dev_cap / 2**30:.1f} GiB before any "
                              f"activation; add ZeRO sharding, tensor parallelism or memory.loss: cce.")
    per_class = saved_tensor_bytes(wl, recompute=Recompute.NONE)
    if wl.memory.flash_attention:
        per_class["scores"] = 0.0
    tensors = tuple(
        tw.SavedTensorClass(name, nbytes, costs.class_s.get(name, 0.0),
                            allowed=frozenset(p for p in tw.Placement if not (name == "input" and p is tw.Placement.RECOMPUTE)))
        for name, nbytes in per_class.items() if nbytes > 0)
    layers = tuple(tw.LayerActivations(costs.fwd_s, costs.bwd_s, tensors) for _ in range(wl.model.layers))
    drive = hw.drives[0] if isinstance(hw, NodeSpec) and hw.drives else None
    nvme_bw = 1.0
    if drive is not None:
        from ..devices.storage import IoDir, throughput_bytes_per_s
        nvme_bw = throughput_bytes_per_s(drive, 4 * 2**20, direction=IoDir.WRITE) * hw.drive_count / hw.device_count
    data = tw.TokenwiseData(
        # 0.1% headroom: the LP may sit on a capacity bound that the simulation's rounding crosses
        layers=layers, device_capacity_bytes=max(0.0, dev_cap - static) * 0.999,
        host_capacity_bytes=host_cap * 0.999 if host_cap != float("inf") else 1e18,
        pcie_bandwidth_bytes_per_s=host_link_bytes_per_s(hw), nvme_capacity_bytes=nvme_cap,
        nvme_bandwidth_bytes_per_s=nvme_bw, device_power_w=device.tdp_w, device_idle_power_w=device.busy_w,
        usd_per_s=device.cloud_usd_per_s,
        objective={"time": tw.CostObjective.TIME, "energy": tw.CostObjective.ENERGY,
                   "cost": tw.CostObjective.DOLLARS}[objective])
    res = tw.solve(data, time_limit_s=time_limit_s)
    plan = _to_plan(res, wl.model.layers, data.buffer_layers)
    sim = simulate_step(wl, hw, plan, device_memory_bytes=dev_cap, host_memory_bytes=host_memory_bytes, keep_tasks=False)
    base = simulate_step(wl, hw, Plan("none"), device_memory_bytes=float("inf"), keep_tasks=False)
    binding = _binding(res, data)
    return ActivationSchedule(plan=plan, objective=objective, predicted_extra_s=res.extra_time_s,
                              predicted_step_s=base.step_time_s + res.extra_time_s * wl.microbatches,
                              simulated_step_s=sim.step_time_s, device_bytes=res.device_bytes + static,
                              host_bytes=res.host_bytes, nvme_bytes=res.nvme_bytes, binding=binding,
                              mip_gap=res.mip_gap, solve_time_s=res.solve_time_s)


def _binding(res, data) -> str:
    if any(d.keep_frac < 1 - 1e-9 for d in res.decisions):
        if res.exposed_transfer_time_s > 0:
            return "device memory (and host-link bandwidth: some transfer is exposed)"
        return "device memory"
    return "none (everything fits on the device)"


def _to_plan(res, layers: int, buffered: int) -> Plan:
    per_layer: dict[int, dict[str, TensorPolicy]] = {}
    for d in res.decisions:
        if d.keep_frac >= 1 - 1e-9:
            continue
        if d.recompute_frac >= 1 - 1e-9:
            pol = TensorPolicy(Action.RECOMPUTE)
        else:
            action = Action.NVME if d.nvme_frac > d.cpu_frac else Action.CPU
            off = d.nvme_frac + d.cpu_frac
            pol = TensorPolicy(action, offload_fraction=min(1.0, off), keep_fraction=min(1.0 - min(1.0, off), d.keep_frac))
        per_layer.setdefault(d.layer, {})[d.tensor] = pol
    return Plan(name="optimised", layers=per_layer, source="simhw schedule (token-wise LP, MEMO §4.1 generalised)")
