"""The whole footprint of a training run: energy, carbon, dollars and material.

Two views of one budget of ``C_train`` model FLOPs on one kind of device:

1. *As configured*: the workload's own devices and parallelism, costed by the step estimate
   (simhw/cost/estimate.py): ``steps = C_train / model_FLOPs_per_step``, run time, energy,
   operational CO2e, embodied CO2e amortised over the devices' lifespan and whole, cloud dollars,
   capex whole and amortised.
2. *Falk et al. scenarios* (arXiv 2512.04142): for every (MFU, lifespan) pair,
   ``N = C_train / (R_peak x MFU x T_life)`` GPUs that spend their whole life on the run; their
   energy from the device power model, embodied CO2e, capex and element masses (material.py).

Sources: ACT22 (carbon.py), LLMCarbon (cross-check, amortisation), Falk et al. abstract
(material.py), the device power model (energy.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..spec.model import DeviceSpec, NodeSpec
from . import carbon, economics as econ, energy, material
from ._tables import FootprintError, table
from .inputs import YEAR_S, parse_grid

SCHEMA = "simhw.footprint/1"


@dataclass(frozen=True)
class Budget:
    """The run's size: model FLOPs and tokens, and where the number came from."""

    total_flops: float
    tokens: float
    flops_per_token: float
    source: str


@dataclass(frozen=True)
class RunFootprint:
    """The workload as configured (its devices, its estimated step)."""

    devices: int
    steps: float
    run_time_s: float
    mfu: float
    it_energy_j: float
    energy_j: float                       # facility energy (IT x PUE)
    operational_kgco2e: float
    embodied_amortised_kgco2e: float
    embodied_whole_kgco2e: float
    lifespan_s: float
    lifespan_source: str
    economics: econ.Economics


@dataclass(frozen=True)
class Scenario:
    """One (MFU, lifespan) pair of Falk et al.'s model."""

    mfu: float
    lifespan_s: float
    gpus_exact: float
    gpus: int
    device_seconds: float
    power_w: float
    energy_j: float                       # facility energy (IT x PUE)
    operational_kgco2e: float
    embodied_kgco2e: float                # whole = amortised: the GPUs spend their life on the run
    cloud_usd: float
    capex_usd: float
    material: material.Material


@dataclass(frozen=True)
class Findings:
    """Savings in GPU count across the grid (Falk et al.'s abstract: 67%, comparable, up to 93%)."""

    mfu_from: float
    mfu_to: float
    lifespan_from_s: float
    lifespan_to_s: float
    mfu_saving: float
    lifespan_saving: float
    combined_saving: float
    stated_combined_saving: float = 0.93
    factor_needed_for_stated: float = 1 / (1 - 0.93)

    @property
    def stated_reached(self) -> bool:
        return self.combined_saving >= self.stated_combined_saving - 5e-3


@dataclass(frozen=True)
class FootprintResult:
    hardware: str
    workload: str
    dtype: str
    peak_flop_per_s: float
    budget: Budget
    grid: str
    grid_g_per_kwh: float
    pue: float
    fab_location: str
    embodied_per_device: carbon.Embodied
    composition: material.Composition
    run: RunFootprint
    scenarios: tuple[Scenario, ...]
    findings: Findings | None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        from dataclasses import asdict

        run = {k: getattr(self.run, k) for k in self.run.__dataclass_fields__ if k != "economics"}
        run["economics"] = self.run.economics.to_dict()
        comp = self.composition
        return {
            "schema": SCHEMA, "hardware": self.hardware, "workload": self.workload, "dtype": self.dtype,
            "peak_flop_per_s": self.peak_flop_per_s, "budget": asdict(self.budget),
            "grid": {"name": self.grid, "g_per_kwh": self.grid_g_per_kwh, "source": "ACT22 location.json"
                     if self.grid in carbon.grid_names() else "user"},
            "pue": self.pue, "fab_location": self.fab_location,
            "embodied_per_device": self.embodied_per_device.to_dict(),
            "composition": {"mass_per_gpu_kg": comp.mass_per_gpu_kg, "mass_source": comp.mass_source,
                            "mass_unverified": comp.mass_unverified,
                            "element_shares": dict(comp.element_shares),
                            "heavy_metals": sorted(comp.heavy_metals),
                            "heavy_metal_share": comp.heavy_metal_share,
                            "shares_status": comp.shares_status},
            "run": run,
            "scenarios": [{**{k: getattr(s, k) for k in s.__dataclass_fields__ if k != "material"},
                           "material": s.material.to_dict()} for s in self.scenarios],
            "findings": None if self.findings is None else {
                **asdict(self.findings), "stated_reached": self.findings.stated_reached},
            "notes": list(self.notes),
        }


def _budget(wl, est, total_flops, tokens) -> Budget:
    tokens_per_step = est.tokens_per_s * est.step_time_s
    if est.model_flops <= 0 or tokens_per_step <= 0:
        raise FootprintError(f"{wl.name}: the estimate has no model FLOPs or tokens per step; "
                             "a footprint needs both.")
    per_token = est.model_flops / tokens_per_step
    if total_flops is not None and tokens is not None:
        raise FootprintError("give either --total-flops or --tokens, not both.")
    if total_flops is not None:
        return Budget(total_flops, total_flops / per_token, per_token, "--total-flops")
    if tokens is not None:
        return Budget(tokens * per_token, tokens, per_token, "--tokens x model FLOPs per token of the estimate")
    runs = table("training_runs")
    known = (runs.get("runs") or {}).get(wl.name)
    if known:
        c = float(known["total_flops"])
        return Budget(c, c / per_token, per_token,
                      f"data/training_runs.yaml ({known.get('status', '')}): {' '.join(str(known['source']).split())}")
    if wl.mode.value == "train":
        t = runs["chinchilla_tokens_per_param"] * wl.model.params()
        return Budget(t * per_token, t, per_token,
                      f"compute-optimal default: {runs['chinchilla_tokens_per_param']} tokens per parameter "
                      "(Hoffmann et al. 2022, arXiv 2203.15556)")
    steps = est.total_time_s / est.step_time_s
    return Budget(est.model_flops * steps, tokens_per_step * steps, per_token, "one run of the workload as given")


def footprint(workload, hw: DeviceSpec | NodeSpec, *, total_flops: float | None = None,
              tokens: float | None = None, mfus=(0.2, 0.6), lifespans_s=(YEAR_S, 3 * YEAR_S),
              grid: str | float = "usa", pue: float = 1.1, fab_location: str = "taiwan",
              estimate_result=None) -> FootprintResult:
    """Energy, CO2e, dollars and material of training ``workload`` on ``hw`` (module docstring).

    ``mfus`` in (0, 1]; ``lifespans_s`` in seconds; ``grid`` an ACT22 location or g/kWh;
    ``estimate_result`` reuses an :class:`~simhw.cost.estimate.EstimateResult` of the same pair.
    """
    from ..cost.estimate import estimate

    device = hw.device if isinstance(hw, NodeSpec) else hw
    mfus, lifespans_s = tuple(mfus), tuple(lifespans_s)
    if not mfus or not lifespans_s:
        raise FootprintError("give at least one MFU and one lifespan.")
    for m in mfus:
        if not (0 < m <= 1):
            raise FootprintError(f"MFU {m!r} is outside (0, 1].")
    if any(not (t > 0) for t in lifespans_s):
        raise FootprintError("lifespans must be positive durations.")
    if not (pue >= 1):
        raise FootprintError(f"PUE {pue!r} must be at least 1.")
    grid_name, g_per_kwh = parse_grid(grid)
    carbon.grid_g_per_kwh(fab_location)
    est = estimate_result or estimate(workload, hw)
    budget = _budget(workload, est, total_flops, tokens)
    # MFU scenarios are fractions of the peak of the format the linears run in (estimate's MFU too)
    fmt = workload.precision.dtype or workload.dtype
    peak = energy.peak_flop_per_s(device, fmt)
    emb = carbon.embodied_per_device(device, fab_location)
    comp = material.composition(device)

    # 1. as configured
    steps = budget.total_flops / est.model_flops
    run_s = steps * est.step_time_s
    it_j = est.energy_j * steps
    life = device.lifespan_s or lifespans_s[0]
    life_src = f"spec {device.name} economics.lifespan" if device.lifespan_s else "first --lifespan (spec has none)"
    run = RunFootprint(
        devices=est.devices, steps=steps, run_time_s=run_s, mfu=est.mfu, it_energy_j=it_j,
        energy_j=energy.run_energy_j(est.energy_j, steps, pue),
        operational_kgco2e=carbon.operational_kgco2e(it_j * pue, g_per_kwh),
        embodied_amortised_kgco2e=carbon.amortised(est.devices * emb.total_kgco2e, run_s, life),
        embodied_whole_kgco2e=est.devices * emb.total_kgco2e, lifespan_s=life, lifespan_source=life_src,
        economics=econ.economics(est.devices, run_s, device.price_usd, device.cloud_usd_per_s, life))

    # 2. Falk et al. scenarios
    scenarios = []
    for m in mfus:
        e = energy.scenario_energy(budget.total_flops, device, fmt, m, pue)
        for t in lifespans_s:
            n = material.gpus_needed(budget.total_flops, peak, m, t)
            whole = material.whole_gpus(n)
            scenarios.append(Scenario(
                mfu=m, lifespan_s=t, gpus_exact=n, gpus=whole, device_seconds=e.device_seconds,
                power_w=e.power_w, energy_j=e.facility_energy_j,
                operational_kgco2e=carbon.operational_kgco2e(e.facility_energy_j, g_per_kwh),
                embodied_kgco2e=whole * emb.total_kgco2e,
                cloud_usd=econ.cloud_usd(e.device_seconds, device.cloud_usd_per_s),
                capex_usd=econ.capex_usd(whole, device.price_usd), material=material.material_for(whole, comp)))
    return FootprintResult(
        hardware=device.name if not isinstance(hw, NodeSpec) else f"{hw.name} ({device.name})",
        workload=workload.name, dtype=fmt.value, peak_flop_per_s=peak, budget=budget,
        grid=grid_name, grid_g_per_kwh=g_per_kwh, pue=pue, fab_location=fab_location,
        embodied_per_device=emb, composition=comp, run=run, scenarios=tuple(scenarios),
        findings=findings(budget.total_flops, peak, mfus, lifespans_s),
        notes=_notes(device, emb, comp, budget, isinstance(hw, NodeSpec)))


def findings(total_flops: float, peak: float, mfus, lifespans_s) -> Findings | None:
    """GPU-count savings from the lowest to the highest MFU and lifespan of the grid."""
    if len(set(mfus)) < 2 and len(set(lifespans_s)) < 2:
        return None
    m0, m1, t0, t1 = min(mfus), max(mfus), min(lifespans_s), max(lifespans_s)
    n = lambda m, t: material.gpus_needed(total_flops, peak, m, t)  # noqa: E731
    base = n(m0, t0)
    return Findings(mfu_from=m0, mfu_to=m1, lifespan_from_s=t0, lifespan_to_s=t1,
                    mfu_saving=material.reduction(base, n(m1, t0)),
                    lifespan_saving=material.reduction(base, n(m0, t1)),
                    combined_saving=material.reduction(base, n(m1, t1)))


def _notes(device: DeviceSpec, emb: carbon.Embodied, comp: material.Composition, budget: Budget,
           node: bool) -> tuple[str, ...]:
    notes = []
    if "UNVERIFIED" in budget.source or budget.source.startswith("compute-optimal"):
        notes.append(f"budget: {budget.source}")
    if comp.mass_unverified:
        notes.append(f"GPU mass {comp.mass_per_gpu_kg:.3f} kg is an UNVERIFIED default (7000 kg / 8800 GPUs, "
                     "Falk et al. abstract); element shares are UNVERIFIED placeholders.")
    else:
        notes.append("element shares are UNVERIFIED placeholders (data/gpu_composition.yaml).")
    if emb.memory_bytes:
        notes.append("memory embodied carbon uses ACT's ddr4_10nm g/GB as a proxy for HBM (UNVERIFIED).")
    if emb.node_extrapolated:
        notes.append(f"process {emb.process_nm:g} nm is outside ACT's 3-28 nm; the {emb.act_node_nm} nm row "
                     "is used (extrapolated).")
    if device.price_usd or device.cloud_usd_per_s:
        notes.append(f"prices are the spec's ({device.name}); shipped prices are UNVERIFIED snapshots.")
    if node:
        notes.append("node spec: energy includes host power (estimate); embodied, capex and material count "
                     "the accelerators only.")
    notes.append("scenarios: each GPU spends its whole lifespan on this run (Falk et al.'s N = C/(R*MFU*T)); "
                 "power = idle + active + e_flop*R_peak*MFU, capped at TDP.")
    return tuple(notes)


__all__ = ["Budget", "Findings", "FootprintResult", "RunFootprint", "Scenario", "footprint", "findings",
           "SCHEMA"]
