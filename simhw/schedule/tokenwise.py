"""Token-wise activation policy: keep / offload to CPU / offload to NVMe / recompute, as an LP.

Generalises MEMO's token-wise recompute-and-swap LP (Zhao et al., "MEMO: Efficiently Training 7B
LLM with 1 Million Sequence Length on 8 GPUs", arXiv 2407.12117, §4.1; ``seed-targets.md`` §2c).
For every layer and every saved-for-backward tensor class the fractions of its tokens kept on
the device, offloaded to host memory, offloaded to NVMe, or recomputed in the backward pass are
continuous variables that sum to one. Constraints: device memory (kept bytes plus MEMO's
rotating buffers), host and NVMe capacity, and per layer PCIe / NVMe transfer time against the
layer's forward (D2H) and backward (H2D) time; transfer beyond the overlap window is *exposed*
time, charged in the objective (or forbidden, as in MEMO). The objective is extra time, energy
or dollars. :func:`solve_memo` is MEMO's exact one-variable LP and :func:`memo_alpha_closed_form`
its closed form.

Modelling choices beyond MEMO: the H2D reload of a layer overlaps its backward time plus its own
recompute time (recompute is compute the prefetch can hide behind); bytes offloaded to NVMe cross
PCIe too, and both links are checked; energy = device power × recompute time + idle power ×
exposed time + per-byte link energy both ways; dollars = $/s × extra time.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from simhw.errors import InfeasibleError
from simhw.schedule.solve import (SolveStatus, infeasible_message, solve_model, timed_build)


class Placement(str, enum.Enum):
    """Where the tokens of a saved tensor live between forward and backward."""

    KEEP = "keep"
    CPU = "cpu"
    NVME = "nvme"
    RECOMPUTE = "recompute"


class CostObjective(str, enum.Enum):
    """What the policy minimises: extra seconds, joules, or dollars over the no-offload run."""

    TIME = "time_s"
    ENERGY = "energy_j"
    DOLLARS = "usd"


@dataclass(frozen=True)
class SavedTensorClass:
    """One class of saved-for-backward tensors of a layer (e.g. MEMO's layer input, attention output)."""

    name: str
    size_bytes: float
    recompute_time_s: float  # time to recompute all tokens of this class in the backward pass
    allowed: frozenset = frozenset(Placement)


@dataclass(frozen=True)
class LayerActivations:
    forward_time_s: float
    backward_time_s: float
    tensors: tuple[SavedTensorClass, ...]

    @property
    def saved_bytes(self) -> float:
        return sum(t.size_bytes for t in self.tensors)


@dataclass(frozen=True)
class TokenwiseData:
    """Inputs of the token-wise LP. NVMe is unused when ``nvme_capacity_bytes`` is 0.

    ``buffer_layers`` rotating device buffers, each the size of the largest layer's saved bytes,
    hold the last ``buffer_layers`` layers, which are never offloaded (MEMO §4.1 uses two).
    """

    layers: tuple[LayerActivations, ...]
    device_capacity_bytes: float
    host_capacity_bytes: float
    pcie_bandwidth_bytes_per_s: float
    nvme_capacity_bytes: float = 0.0
    nvme_bandwidth_bytes_per_s: float = 1.0
    device_power_w: float = 0.0
    device_idle_power_w: float | None = None  # power while waiting on exposed transfers
    pcie_energy_j_per_byte: float = 0.0
    nvme_energy_j_per_byte: float = 0.0
    usd_per_s: float = 0.0
    objective: CostObjective = CostObjective.TIME
    buffer_layers: int = 2
    allow_exposed_transfer: bool = True


@dataclass(frozen=True)
class TensorDecision:
    layer: int
    tensor: str
    keep_frac: float
    cpu_frac: float
    nvme_frac: float
    recompute_frac: float


@dataclass(frozen=True)
class TokenwiseResult:
    status: SolveStatus
    mip_gap: float | None
    objective: CostObjective
    objective_value: float  # in the objective's unit (s, J or USD)
    decisions: tuple[TensorDecision, ...]
    device_bytes: float  # kept bytes plus buffer_bytes
    buffer_bytes: float
    host_bytes: float
    nvme_bytes: float
    recompute_time_s: float
    exposed_transfer_time_s: float
    extra_time_s: float
    energy_j: float
    cost_usd: float
    build_time_s: float
    solve_time_s: float


_RESOURCES = ("device memory", "host memory", "NVMe capacity")


def _scales(data: TokenwiseData) -> tuple[float, float]:
    byte_scale = max([t.size_bytes for l in data.layers for t in l.tensors] + [1.0])
    time_scale = max([l.forward_time_s for l in data.layers] + [1e-12])
    return byte_scale, time_scale


def _buffer_bytes(data: TokenwiseData) -> float:
    if not data.layers or data.buffer_layers <= 0:
        return 0.0
    return min(data.buffer_layers, len(data.layers)) * max(l.saved_bytes for l in data.layers)


def _lin(terms: dict, const: float = 0.0):
    """A Pyomo LinearExpression from {id(var): [var, coefficient]} (fast to build and to hand to HiGHS)."""
    from pyomo.core.expr.numeric_expr import LinearExpression

    return LinearExpression(constant=const, linear_coefs=[c for _, c in terms.values()],
                            linear_vars=[v for v, _ in terms.values()])


def _add(terms: dict, var, coef: float) -> None:
    entry = terms.setdefault(id(var), [var, 0.0])
    entry[1] += coef


def evaluate_policy(data: TokenwiseData, decisions) -> dict[str, float]:
    """Metrics of a policy (one :class:`TensorDecision` per layer and tensor class), without a solver:
    device/host/NVMe bytes, recompute and exposed transfer seconds, energy (J) and cost (USD)."""
    by_key = {(d.layer, d.tensor): d for d in decisions}
    n_opt = max(0, len(data.layers) - max(0, data.buffer_layers))
    keep = cpu = nvme = recompute_s = exposed_s = 0.0
    for l in range(n_opt):
        lay = data.layers[l]
        moved = moved_nvme = rec = 0.0
        for t in lay.tensors:
            d = by_key[(l, t.name)]
            keep += d.keep_frac * t.size_bytes
            cpu += d.cpu_frac * t.size_bytes
            nvme += d.nvme_frac * t.size_bytes
            moved += (d.cpu_frac + d.nvme_frac) * t.size_bytes
            moved_nvme += d.nvme_frac * t.size_bytes
            rec += d.recompute_frac * t.recompute_time_s
        xfer = moved / data.pcie_bandwidth_bytes_per_s
        if moved_nvme > 0:
            xfer = max(xfer, moved_nvme / data.nvme_bandwidth_bytes_per_s)
        exposed_s += max(0.0, xfer - lay.forward_time_s) + max(0.0, xfer - lay.backward_time_s - rec)
        recompute_s += rec
    idle_w = data.device_power_w if data.device_idle_power_w is None else data.device_idle_power_w
    energy = (data.device_power_w * recompute_s + idle_w * exposed_s
              + 2.0 * data.pcie_energy_j_per_byte * (cpu + nvme) + 2.0 * data.nvme_energy_j_per_byte * nvme)
    return {"device_bytes": keep + _buffer_bytes(data), "host_bytes": cpu, "nvme_bytes": nvme,
            "recompute_time_s": recompute_s, "exposed_transfer_time_s": exposed_s,
            "extra_time_s": recompute_s + exposed_s, "energy_j": energy,
            "cost_usd": data.usd_per_s * (recompute_s + exposed_s)}


def build_model(data: TokenwiseData, relax: str | None = None):
    """Build the LP (pure, no solver). ``relax`` names one of ``_RESOURCES`` (or ``"all"``): that
    capacity is dropped and its use is minimised instead; used to find the least memory needed.

    Variables are fractions x[l, c, p] and exposed transfer e_fwd[l], e_bwd[l] (seconds scaled
    by the longest forward); bytes are scaled by the largest tensor class."""
    import pyomo.environ as pyo

    bs, ts = _scales(data)
    n_opt = max(0, len(data.layers) - max(0, data.buffer_layers))
    use_nvme = data.nvme_capacity_bytes > 0
    idx = [(l, c, p) for l in range(n_opt) for c, t in enumerate(data.layers[l].tensors)
           for p in Placement if p in t.allowed and (p is not Placement.NVME or use_nvme)]
    present = {(l, c) for l, c, _ in idx}
    for l in range(n_opt):
        for c, t in enumerate(data.layers[l].tensors):
            if (l, c) not in present:
                raise InfeasibleError(f"Tensor {t.name!r} of layer {l} allows no usable placement "
                                      f"(allowed: {sorted(p.value for p in t.allowed)}).")
    m = pyo.ConcreteModel(name="tokenwise")
    m.byte_scale, m.time_scale, m.n_opt, m.decision_index = bs, ts, n_opt, idx
    m.x = pyo.Var(range(len(idx)), bounds=(0.0, 1.0))
    ub = None if data.allow_exposed_transfer else 0.0
    m.e_fwd = pyo.Var(range(n_opt), bounds=(0.0, ub))
    m.e_bwd = pyo.Var(range(n_opt), bounds=(0.0, ub))
    m.cons = pyo.ConstraintList()
    pcie = data.pcie_bandwidth_bytes_per_s * ts / bs  # scaled bytes per scaled second
    nvme = data.nvme_bandwidth_bytes_per_s * ts / bs
    idle_w = data.device_power_w if data.device_idle_power_w is None else data.device_idle_power_w
    usage = {r: {} for r in _RESOURCES}
    one: dict[tuple[int, int], dict] = {}
    moved: list[dict] = [{} for _ in range(n_opt)]
    to_nvme: list[dict] = [{} for _ in range(n_opt)]
    recompute: list[dict] = [{} for _ in range(n_opt)]
    cost = {CostObjective.TIME: {}, CostObjective.ENERGY: {}, CostObjective.DOLLARS: {}}
    for k, (l, c, p) in enumerate(idx):
        x, t = m.x[k], data.layers[l].tensors[c]
        size = t.size_bytes / bs
        _add(one.setdefault((l, c), {}), x, 1.0)
        if p is Placement.KEEP:
            _add(usage["device memory"], x, size)
        elif p is Placement.RECOMPUTE:
            _add(recompute[l], x, t.recompute_time_s / ts)
            for obj, rate in ((CostObjective.TIME, 1.0), (CostObjective.ENERGY, data.device_power_w),
                              (CostObjective.DOLLARS, data.usd_per_s)):
                _add(cost[obj], x, rate * t.recompute_time_s)
        else:
            _add(moved[l], x, size / pcie)
            j_per_byte = 2.0 * data.pcie_energy_j_per_byte
            if p is Placement.NVME:
                _add(to_nvme[l], x, size / nvme)
                _add(usage["NVMe capacity"], x, size)
                j_per_byte += 2.0 * data.nvme_energy_j_per_byte
            else:
                _add(usage["host memory"], x, size)
            _add(cost[CostObjective.ENERGY], x, j_per_byte * t.size_bytes)
    for terms in one.values():
        m.cons.add(_lin(terms) == 1.0)
    for l in range(n_opt):
        lay = data.layers[l]
        for window, e, extra in ((lay.forward_time_s, m.e_fwd[l], {}), (lay.backward_time_s, m.e_bwd[l],
                                                                         recompute[l])):
            for load in (moved[l], to_nvme[l]) if to_nvme[l] else (moved[l],):
                terms = {key: list(entry) for key, entry in load.items()}
                for v, coef in extra.values():
                    _add(terms, v, -coef)
                _add(terms, e, -1.0)
                m.cons.add(_lin(terms) <= window / ts)
        for obj, rate in ((CostObjective.TIME, 1.0), (CostObjective.ENERGY, idle_w),
                          (CostObjective.DOLLARS, data.usd_per_s)):
            _add(cost[obj], m.e_fwd[l], rate * ts)
            _add(cost[obj], m.e_bwd[l], rate * ts)
    caps = {"device memory": (data.device_capacity_bytes - _buffer_bytes(data)) / bs,
            "host memory": data.host_capacity_bytes / bs, "NVMe capacity": data.nvme_capacity_bytes / bs}
    m.constant_violations = []  # (resource, bytes needed, capacity) when no variable can help
    for name, terms in usage.items():
        if relax in (name, "all"):
            continue
        if terms:
            m.cons.add(_lin(terms) <= caps[name])
        elif caps[name] < -1e-12:
            m.constant_violations.append((name, _buffer_bytes(data), caps[name] * bs + _buffer_bytes(data)))
    if relax in _RESOURCES:
        m.obj = pyo.Objective(expr=_lin(usage[relax]))
    elif relax == "all":
        m.obj = pyo.Objective(expr=0.0)
    else:
        terms = cost[data.objective]
        scale = max([abs(c) for _, c in terms.values()] + [1e-300])
        m.obj = pyo.Objective(expr=_lin({k: [v, c / scale] for k, (v, c) in terms.items()}))
    m.usage = {name: _lin(terms) for name, terms in usage.items()}
    return m


def _least_memory_message(data: TokenwiseData, time_limit_s: float) -> str:
    import pyomo.environ as pyo

    have = {"device memory": data.device_capacity_bytes, "host memory": data.host_capacity_bytes,
            "NVMe capacity": data.nvme_capacity_bytes}
    fixes = []
    for resource in _RESOURCES:
        if resource == "NVMe capacity" and data.nvme_capacity_bytes <= 0:
            continue
        m = build_model(data, relax=resource)
        if m.constant_violations:
            continue
        info = solve_model(m, time_limit_s=time_limit_s, mip_gap=1e-9)
        if info.status is not SolveStatus.INFEASIBLE:
            need = pyo.value(m.usage[resource]) * m.byte_scale
            if resource == "device memory":
                need += _buffer_bytes(data)
            fixes.append((resource, have[resource], need))
    if fixes:
        return infeasible_message("The token-wise activation policy", *fixes[0], *fixes[1:])
    m = build_model(data, relax="all")
    if solve_model(m, time_limit_s=time_limit_s, mip_gap=1e-9).status is SolveStatus.INFEASIBLE:
        return ("The token-wise activation policy is infeasible: PCIe/NVMe bandwidth is binding (transfers "
                "cannot hide behind layer compute and exposed transfer is not allowed); allow exposed "
                "transfer or permit recompute.")
    return ("The token-wise activation policy is infeasible: device, host and NVMe memory together are "
            "binding; no single one of them suffices, raise more than one.")


def solve(data: TokenwiseData, time_limit_s: float = 60.0, mip_gap: float = 1e-6) -> TokenwiseResult:
    """Solve the token-wise LP; raise :class:`InfeasibleError` with the least memory that would fit."""
    m, build_s = timed_build(build_model, data)
    if m.constant_violations:
        resource, need, have = m.constant_violations[0]
        raise InfeasibleError(infeasible_message("The token-wise activation policy", resource, have, need))
    info = solve_model(m, time_limit_s=time_limit_s, mip_gap=mip_gap, build_time_s=build_s)
    if info.status is SolveStatus.INFEASIBLE:
        raise InfeasibleError(_least_memory_message(data, time_limit_s))
    decisions = {}
    for k, (l, c, p) in enumerate(m.decision_index):
        decisions.setdefault((l, c), {})[p] = min(1.0, max(0.0, m.x[k].value or 0.0))
    out = []
    for l, lay in enumerate(data.layers):
        for c, t in enumerate(lay.tensors):
            f = decisions.get((l, c), {Placement.KEEP: 1.0})  # the buffered tail keeps everything
            out.append(TensorDecision(l, t.name, *(f.get(p, 0.0) for p in Placement)))
    metrics = evaluate_policy(data, out)
    value = {CostObjective.TIME: metrics["extra_time_s"], CostObjective.ENERGY: metrics["energy_j"],
             CostObjective.DOLLARS: metrics["cost_usd"]}
    return TokenwiseResult(
        status=info.status, mip_gap=info.mip_gap, objective=data.objective,
        objective_value=value[data.objective], decisions=tuple(out), buffer_bytes=_buffer_bytes(data),
        build_time_s=build_s, solve_time_s=info.solve_time_s, **metrics)


# ---- MEMO §4.1, exactly -------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoLPData:
    """MEMO §4.1 inputs for one layer (all layers alike) of ``num_layers``."""

    input_bytes: float  # S_input, always offloaded
    attn_bytes: float  # S_attn (FlashAttention output), always offloaded
    others_bytes: float  # S_others, a fraction alpha of its tokens offloaded, the rest recomputed
    pcie_bandwidth_bytes_per_s: float
    layer_forward_time_s: float
    num_layers: int
    host_capacity_bytes: float


@dataclass(frozen=True)
class MemoLPResult:
    status: SolveStatus
    alpha: float
    binding: str  # "alpha <= 1", "PCIe bandwidth" or "host memory"


def _memo_bounds(d: MemoLPData) -> dict[str, float]:
    fixed = d.input_bytes + d.attn_bytes
    swapped = d.num_layers - 2
    return {
        "alpha <= 1": 1.0,
        "PCIe bandwidth": (d.layer_forward_time_s * d.pcie_bandwidth_bytes_per_s - fixed) / d.others_bytes,
        "host memory": (math.inf if swapped <= 0 else
                        (d.host_capacity_bytes / swapped - fixed) / d.others_bytes),
    }


def memo_alpha_closed_form(d: MemoLPData) -> float:
    """alpha* = min(1, (T_fwd·B_pcie − S_in − S_attn)/S_o, (M_cpu/(n−2) − S_in − S_attn)/S_o)."""
    return min(_memo_bounds(d).values())


def build_memo_model(d: MemoLPData):
    """max α s.t. (S_in + S_attn + α·S_o)/B_pcie ≤ T_fwd, (n−2)(S_in + S_attn + α·S_o) ≤ M_cpu, 0 ≤ α ≤ 1."""
    import pyomo.environ as pyo

    bs = max(d.input_bytes, d.attn_bytes, d.others_bytes, 1.0)
    per_layer = (d.input_bytes + d.attn_bytes) / bs
    m = pyo.ConcreteModel(name="memo_tokenwise")
    m.alpha = pyo.Var(bounds=(0.0, 1.0))
    swapped = per_layer + m.alpha * d.others_bytes / bs
    m.bandwidth = pyo.Constraint(
        expr=swapped <= d.layer_forward_time_s * d.pcie_bandwidth_bytes_per_s / bs)
    m.host = pyo.Constraint(expr=max(d.num_layers - 2, 0) * swapped <= d.host_capacity_bytes / bs)
    m.obj = pyo.Objective(expr=m.alpha, sense=pyo.maximize)
    return m


def solve_memo(d: MemoLPData, time_limit_s: float = 10.0) -> MemoLPResult:
    """Solve MEMO's LP; infeasible (even α = 0 does not fit) raises :class:`InfeasibleError`."""
    info = solve_model(build_memo_model(d), time_limit_s=time_limit_s, mip_gap=1e-9)
    fixed = d.input_bytes + d.attn_bytes
    if info.status is SolveStatus.INFEASIBLE:
        if fixed > d.layer_forward_time_s * d.pcie_bandwidth_bytes_per_s:
            raise InfeasibleError(
                f"MEMO's token-wise LP is infeasible: PCIe bandwidth is binding; offloading the layer "
                f"input and attention output ({fixed:.4g} bytes) needs at least "
                f"{fixed / d.layer_forward_time_s:.4g} B/s to hide behind {d.layer_forward_time_s:.4g} s.")
        raise InfeasibleError(infeasible_message("MEMO's token-wise LP", "host memory",
                                                 d.host_capacity_bytes, (d.num_layers - 2) * fixed))
    bounds = _memo_bounds(d)
    binding = min(bounds, key=bounds.get)
    return MemoLPResult(info.status, float(info.objective_value), binding)
