"""What a plan does with one layer's saved tensors: bytes kept on the device, bytes offloaded to
host memory or NVMe, and the recompute it costs before the layer's backward.

Shared by the single-stage simulation (sim/run.py), which schedules the transfers, and the
pipeline simulation (sim/pipeline_run.py), which replays recompute plans stage by stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from ..schedule.plan import Action, Plan


@dataclass(frozen=True)
class LayerDecision:
    kept_bytes: float = 0.0
    cpu_bytes: float = 0.0
    nvme_bytes: float = 0.0
    recompute_s: float = 0.0
    recompute_bytes: float = 0.0

    @property
    def offloaded_bytes(self) -> float:
        return self.cpu_bytes + self.nvme_bytes


def layer_decision(plan: Plan, layer: int, layers: int, per_class: Mapping[str, float], class_s: Mapping[str, float],
                   workload_recompute_s: float, full_recompute_s: Callable[[], float]) -> LayerDecision:
    """One training layer under ``plan``: ``per_class`` saved bytes by tensor class (as kept without
    recompute), ``class_s`` the forward time of each class's producers. A plan that follows the
    workload's own recompute pays ``workload_recompute_s``; a plan that keeps nothing but the
    layer's input re-runs the layer as the framework's checkpoint does (``full_recompute_s()``:
    Megatron's whole layer, torch.utils.checkpoint up to its early stop), not just the producers."""
    kept = cpu = nvme = rec_s = rec_bytes = 0.0
    if plan.workload_recompute:
        rec_s = workload_recompute_s
    whole = not plan.workload_recompute       # every class but the input recomputed
    for cls, nbytes in per_class.items():
        if nbytes <= 0:
            continue
        pol = plan.policy(layer, cls, layers)
        whole = whole and (cls == "input" or pol.action is Action.RECOMPUTE)
        if pol.action is Action.KEEP or cls == "input" and pol.action is Action.RECOMPUTE:
            kept += nbytes
        elif pol.action is Action.RECOMPUTE:
            rec_s += 0.0 if plan.workload_recompute else class_s.get(cls, 0.0)
            rec_bytes += nbytes
        else:
            a, k = pol.offload_fraction, pol.keep_fraction
            if cls == "input":                       # the checkpoint cannot be recomputed
                k = 1.0 - a
            kept += k * nbytes
            cpu += a * nbytes if pol.action is Action.CPU else 0.0
            nvme += a * nbytes if pol.action is Action.NVME else 0.0
            rec_s += max(0.0, 1 - a - k) * class_s.get(cls, 0.0)
            rec_bytes += max(0.0, 1 - a - k) * nbytes
    if whole and rec_bytes > 0:
        rec_s = full_recompute_s()
    return LayerDecision(kept, cpu, nvme, rec_s, rec_bytes)
