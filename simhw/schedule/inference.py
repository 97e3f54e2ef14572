"""Decode offload policy: fractions of weights, KV cache and activations on GPU / CPU / NVMe, as an LP.

After FlexGen's policy search (Sheng et al., "FlexGen: High-Throughput Generative Inference of
Large Language Models with a Single GPU", ICML 2023, §4 cost model and LP): each of weights,
KV cache and activations is split into fractions on GPU, CPU and NVMe (summing to one). Every
decode step reads all of them once; whatever is not on the GPU crosses PCIe, and whatever is on
NVMe also crosses the NVMe link, all overlapped with compute, so the step time is

    T = max(compute, (W + K + H)/B_hbm, off-GPU bytes/B_pcie, NVMe bytes/B_nvme,
            off-GPU new-KV bytes/B_pcie, GPU ops)

modelled with an epigraph variable T ≥ each term (min T = max tokens/s). "GPU ops" (optional) is
the cost model's own time for the step's kernels with everything on the GPU (cost/estimate.py:
each op at its compute, memory and latency limits), a floor that FlexGen's two aggregate terms
do not see. Offloaded data streams
layer by layer through a double buffer, so the GPU holds 2/num_layers of the off-GPU bytes on top
of its share (and the CPU 2/num_layers of the NVMe bytes). FlexGen's CPU-side attention and
compression are not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass

from simhw.errors import InfeasibleError
from simhw.schedule.solve import SolveStatus, infeasible_message, solve_model, timed_build

_KINDS = ("weights", "kv_cache", "activations")
_TIERS = ("gpu", "cpu", "nvme")
_RESOURCES = {"gpu": "GPU memory", "cpu": "CPU memory", "nvme": "NVMe capacity"}


@dataclass(frozen=True)
class InferenceData:
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    compute_time_s: float  # per decode step
    tokens_per_step: float  # tokens produced per decode step: the batch (x the accepted drafts + 1 when speculating)
    num_layers: int
    gpu_capacity_bytes: float
    cpu_capacity_bytes: float
    hbm_bandwidth_bytes_per_s: float
    pcie_bandwidth_bytes_per_s: float
    nvme_capacity_bytes: float = 0.0
    nvme_bandwidth_bytes_per_s: float = 1.0
    kv_write_bytes_per_step: float = 0.0  # new K,V written each step
    gpu_ops_time_s: float = 0.0  # the cost model's time of the step's kernels, all data on the GPU


@dataclass(frozen=True)
class TierFractions:
    gpu: float
    cpu: float
    nvme: float


@dataclass(frozen=True)
class InferenceResult:
    status: SolveStatus
    weights: TierFractions
    kv_cache: TierFractions
    activations: TierFractions
    step_time_s: float
    tokens_per_s: float
    binding: str  # which term sets the step time: compute, HBM, PCIe, NVMe, GPU ops
    gpu_bytes: float  # resident share plus streaming buffer
    cpu_bytes: float
    nvme_bytes: float
    build_time_s: float
    solve_time_s: float


def build_model(data: InferenceData, relax: str | None = None):
    """Build the LP (pure). ``relax`` in {"gpu", "cpu", "nvme", "all"} drops that capacity and
    minimises its use instead (used to report the least memory needed)."""
    import pyomo.environ as pyo

    size = {"weights": data.weights_bytes, "kv_cache": data.kv_cache_bytes,
            "activations": data.activation_bytes}
    bs = max(list(size.values()) + [1.0])
    hbm_s = sum(size.values()) / data.hbm_bandwidth_bytes_per_s
    ts = max(data.compute_time_s, hbm_s, data.gpu_ops_time_s, 1e-12)
    s = {k: v / bs for k, v in size.items()}
    tiers = [t for t in _TIERS if t != "nvme" or data.nvme_capacity_bytes > 0]
    m = pyo.ConcreteModel(name="flexgen_decode")
    m.byte_scale, m.time_scale = bs, ts
    m.f = pyo.Var(_KINDS, tiers, bounds=(0.0, 1.0))
    m.T = pyo.Var(bounds=(max(data.compute_time_s, hbm_s, data.gpu_ops_time_s) / ts, None))
    m.one = pyo.Constraint(_KINDS, rule=lambda m, k: sum(m.f[k, t] for t in tiers) == 1.0)

    def on(tier):
        return sum(m.f[k, tier] * s[k] for k in _KINDS) if tier in tiers else 0.0

    off_gpu = sum((1 - m.f[k, "gpu"]) * s[k] for k in _KINDS)
    pcie = data.pcie_bandwidth_bytes_per_s * ts / bs
    m.pcie = pyo.Constraint(expr=m.T >= off_gpu / pcie)
    m.pcie_write = pyo.Constraint(
        expr=m.T >= (1 - m.f["kv_cache", "gpu"]) * data.kv_write_bytes_per_step / bs / pcie)
    if "nvme" in tiers:
        m.nvme = pyo.Constraint(expr=m.T >= on("nvme") / (data.nvme_bandwidth_bytes_per_s * ts / bs))
    buffer = 2.0 / max(data.num_layers, 1)
    usage = {"gpu": on("gpu") + buffer * off_gpu, "cpu": on("cpu") + buffer * on("nvme"), "nvme": on("nvme")}
    caps = {"gpu": data.gpu_capacity_bytes, "cpu": data.cpu_capacity_bytes, "nvme": data.nvme_capacity_bytes}
    m.cap = pyo.ConstraintList()
    for tier in tiers:
        if relax not in (tier, "all"):
            m.cap.add(usage[tier] <= caps[tier] / bs)
    m.usage = usage
    # among placements of equal step time, keep data on the GPU, then in CPU memory (a millionth of
    # the traffic's time: it breaks ties, e.g. the small activations, without trading off T)
    tie = 1e-6 * (off_gpu / pcie + (on("nvme") if "nvme" in tiers else 0.0) / pcie)
    m.obj = pyo.Objective(expr=usage[relax] if relax in usage else (0.0 if relax == "all" else m.T + tie))
    return m


def _least_memory_message(data: InferenceData, time_limit_s: float) -> str:
    import pyomo.environ as pyo

    have = {"gpu": data.gpu_capacity_bytes, "cpu": data.cpu_capacity_bytes, "nvme": data.nvme_capacity_bytes}
    fixes = []
    for tier in _TIERS:
        if tier == "nvme" and data.nvme_capacity_bytes <= 0:
            continue
        m = build_model(data, relax=tier)
        if solve_model(m, time_limit_s=time_limit_s, mip_gap=1e-9).status is not SolveStatus.INFEASIBLE:
            fixes.append((_RESOURCES[tier], have[tier], pyo.value(m.usage[tier]) * m.byte_scale))
    if fixes:
        return infeasible_message("The decode offload policy", *fixes[0], *fixes[1:])
    total = data.weights_bytes + data.kv_cache_bytes + data.activation_bytes
    return (f"The decode offload policy is infeasible: GPU, CPU and NVMe memory together are binding; "
            f"{total:.4g} bytes (plus streaming buffers) exceed {sum(have.values()):.4g} bytes.")


def solve(data: InferenceData, time_limit_s: float = 30.0, mip_gap: float = 1e-6) -> InferenceResult:
    """Maximise tokens/s; raise :class:`InfeasibleError` naming the binding memory and its least size."""
    import pyomo.environ as pyo

    m, build_s = timed_build(build_model, data)
    info = solve_model(m, time_limit_s=time_limit_s, mip_gap=mip_gap, build_time_s=build_s)
    if info.status is SolveStatus.INFEASIBLE:
        raise InfeasibleError(_least_memory_message(data, time_limit_s))

    def frac(kind):
        return TierFractions(*(min(1.0, max(0.0, pyo.value(m.f[kind, t]))) if (kind, t) in m.f else 0.0
                               for t in _TIERS))

    step_s = pyo.value(m.T) * m.time_scale
    total_bytes = data.weights_bytes + data.kv_cache_bytes + data.activation_bytes
    hbm_s = total_bytes / data.hbm_bandwidth_bytes_per_s
    sizes = dict(zip(_KINDS, (data.weights_bytes, data.kv_cache_bytes, data.activation_bytes)))
    f = {k: frac(k) for k in _KINDS}
    off_gpu = sum((1 - f[k].gpu) * b for k, b in sizes.items())
    terms = {"compute": data.compute_time_s, "HBM": hbm_s,
             "PCIe": max(off_gpu, (1 - f["kv_cache"].gpu) * data.kv_write_bytes_per_step)
             / data.pcie_bandwidth_bytes_per_s}
    if data.gpu_ops_time_s > 0:
        terms["GPU ops"] = data.gpu_ops_time_s
    if data.nvme_capacity_bytes > 0:
        terms["NVMe"] = sum(f[k].nvme * b for k, b in sizes.items()) / data.nvme_bandwidth_bytes_per_s
    binding = max(terms, key=terms.get)
    used = {t: pyo.value(m.usage[t]) * m.byte_scale for t in _TIERS}
    return InferenceResult(
        status=info.status, weights=f["weights"], kv_cache=f["kv_cache"], activations=f["activations"],
        step_time_s=step_s, tokens_per_s=data.tokens_per_step / step_s,
        binding=binding, gpu_bytes=used["gpu"], cpu_bytes=used["cpu"], nvme_bytes=used["nvme"],
        build_time_s=build_s, solve_time_s=info.solve_time_s)
