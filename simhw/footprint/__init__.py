"""Footprint of an ML run: energy, carbon (ACT22, LLMCarbon), dollars and material (Falk et al.).

Public API::

    from simhw.footprint import footprint
    res = footprint(load_workload("workloads/gpt4-train.yaml"), load_hw("a100"),
                    total_flops=2.1e25, mfus=(0.2, 0.6), lifespans_s=(YEAR_S, 3 * YEAR_S))
    res.scenarios[0].gpus, res.run.energy_j, res.to_dict()

Modules: energy.py (run, MFU-scenario and per-inference energy), carbon.py (operational and ACT
embodied CO2e), material.py (Falk et al.'s GPU count and element masses), economics.py (cloud and
capex dollars), scenarios.py (the whole footprint), inputs.py (strict option parsing). Data tables
with their sources: data/*.yaml.
"""
from __future__ import annotations

from ._tables import FootprintError
from .carbon import (Embodied, cpa_kg_per_m2, dram_kg_per_byte, embodied_per_device, grid_g_per_kwh,
                     operational_kgco2e)
from .economics import Economics, capex_usd, cloud_usd
from .energy import (device_energy_per_inference_j, device_power_w, energy_per_inference_j,
                     scenario_energy)
from .inputs import YEAR_S, parse_grid, parse_lifespans, parse_mfus
from .material import (Composition, Material, composition, default_mass_kg, factor_for_reduction,
                       gpus_needed, material_for, reduction)
from .scenarios import SCHEMA, Findings, FootprintResult, RunFootprint, Scenario, findings, footprint

__all__ = ["FootprintError", "Embodied", "cpa_kg_per_m2", "dram_kg_per_byte", "embodied_per_device",
           "grid_g_per_kwh", "operational_kgco2e", "Economics", "capex_usd", "cloud_usd",
           "device_energy_per_inference_j", "device_power_w", "energy_per_inference_j", "scenario_energy",
           "YEAR_S", "parse_grid", "parse_lifespans", "parse_mfus", "Composition", "Material",
           "composition", "default_mass_kg", "factor_for_reduction", "gpus_needed", "material_for",
           "reduction", "SCHEMA", "Findings", "FootprintResult", "RunFootprint", "Scenario", "findings",
           "footprint"]
