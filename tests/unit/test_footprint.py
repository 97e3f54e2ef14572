"""Footprint library: ACT carbon, device power, Falk GPU counts, composition, dollars, option parsing."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

import simhw
from simhw.errors import SimhwError
from simhw.footprint import (YEAR_S, FootprintError, capex_usd, cloud_usd, composition, cpa_kg_per_m2,
                             default_mass_kg, device_energy_per_inference_j, device_power_w,
                             dram_kg_per_byte, embodied_per_device, energy_per_inference_j, footprint,
                             gpus_needed, grid_g_per_kwh, material_for, operational_kgco2e, parse_grid,
                             parse_lifespans, parse_mfus, reduction, scenario_energy)
from simhw.footprint.carbon import act_node, amortised
from simhw.footprint.economics import economics
from simhw.footprint.inputs import parse_positive, parse_pue
from simhw.footprint.material import factor_for_reduction, whole_gpus
from simhw.spec.model import DType

ROOT = Path(__file__).resolve().parents[2]
KG_PER_CM2 = 1e4  # kg/m^2 per kg/cm^2


@pytest.fixture(scope="module")
def a100():
    return simhw.load_hw("a100")


# --- carbon (ACT22) -------------------------------------------------------------------------

# hw-facts §6: CPA kg/cm^2 derived from ACT's data files, Taiwan 583 and USA 380 g/kWh.
@pytest.mark.parametrize("node,taiwan,usa", [(28, 1.33, 1.12), (14, 1.56, 1.28), (10, 1.78, 1.44),
                                             (7, 2.32, 1.82), (5, 2.78, 2.14), (3, 3.16, 2.41)])
def test_act_cpa_matches_hw_facts_table(node, taiwan, usa):
    assert cpa_kg_per_m2(node, "taiwan") / KG_PER_CM2 == pytest.approx(taiwan, abs=0.006)
    assert cpa_kg_per_m2(node, "usa") / KG_PER_CM2 == pytest.approx(usa, abs=0.006)


def test_act_cpa_formula_7nm():
    # (583 * 2.15 + (350 + 200) / 2 + 500) / 0.875 g/cm^2
    assert cpa_kg_per_m2(7) == pytest.approx((583 * 2.15 + 275 + 500) / 0.875 * 1e-3 * KG_PER_CM2)
    assert cpa_kg_per_m2(7, gpa="95") > cpa_kg_per_m2(7) > cpa_kg_per_m2(7, gpa="99")
    with pytest.raises(FootprintError):
        cpa_kg_per_m2(7, gpa="90")


@pytest.mark.parametrize("process,row,extrapolated", [(7, 7, False), (12, 14, False), (4, 5, False),
                                                      (6, 7, False), (16, 14, False), (65, 28, True),
                                                      (2, 3, True)])
def test_act_node_mapping(process, row, extrapolated):
    node = act_node(process)
    assert (node.act_node_nm, node.extrapolated) == (row, extrapolated)


def test_embodied_a100_and_h100_dies_match_hw_facts():
    a = embodied_per_device(simhw.load_hw("a100"))
    h = embodied_per_device(simhw.load_hw("h100"))
    assert a.die_kgco2e == pytest.approx(19.2, rel=0.005)       # hw-facts §6: GA100 8.26 cm^2 x 2.32
    assert h.die_kgco2e == pytest.approx(22.6, rel=0.005)       # GH100 8.14 cm^2 x 2.78
    # the HBM the runtime reports (79.14 GiB of the 80 GiB) x ddr4_10nm / yield
    assert a.memory_kgco2e == pytest.approx(79.14 * 2**30 / 1e9 * 65 / 0.875 * 1e-3)
    assert a.total_kgco2e == pytest.approx(a.die_kgco2e + a.memory_kgco2e)
    assert a.llmcarbon_die_kgco2e == pytest.approx(1.6 * 8.26)  # LLMCarbon 7 nm CPA 1.6 kg/cm^2
    assert a.method == "act" and not a.node_extrapolated
    assert a.to_dict()["memory_proxy"].startswith("ACT ddr4_10nm")


def test_embodied_falls_back_to_spec_figure_without_a_die():
    ssd = simhw.load_hw("pm1733")
    e = embodied_per_device(ssd)
    assert e.method == "spec" and e.total_kgco2e == ssd.embodied_kgco2e and e.memory_kgco2e == 0


def test_dram_per_byte():
    assert dram_kg_per_byte() == pytest.approx(65 / 0.875 * 1e-12)
    assert dram_kg_per_byte("lpddr4") == pytest.approx(48 / 0.875 * 1e-12)


@pytest.mark.parametrize("name,value", [("world", 301), ("usa", 380), ("europe", 295), ("taiwan", 583),
                                        ("USA", 380)])
def test_act_grid_intensities(name, value):
    assert grid_g_per_kwh(name) == value


def test_unknown_grid_is_a_user_error():
    with pytest.raises(SimhwError, match="mars"):
        grid_g_per_kwh("mars")


def test_operational_carbon_and_amortisation():
    assert operational_kgco2e(3.6e6, 380) == pytest.approx(0.38)   # 1 kWh at 380 g/kWh
    assert amortised(100.0, 1.0, 4.0) == 25.0
    assert amortised(100.0, 8.0, 4.0) == 200.0                      # outlives the devices: replaced
    assert amortised(100.0, 1.0, 0.0) == 100.0


# --- energy ---------------------------------------------------------------------------------

def test_device_power_model(a100):
    # idle 60 W + active 100 W + 1.161 pJ/FLOP x 312 TFLOP/s x MFU (full clock: below TDP)
    assert device_power_w(a100, DType.BF16, 0.2) == pytest.approx(60 + 100 + 1.161e-12 * 312e12 * 0.2)
    assert device_power_w(a100, DType.BF16, 1.0) == 400.0            # capped at TDP
    bare = dataclasses.replace(a100, energy_j_per_flop=MappingProxyType({}))
    # no e_flop: (TDP - idle - active) x MFU / compute_fraction
    assert device_power_w(bare, DType.BF16, 0.43) == pytest.approx(160 + 240 * 0.43 / 0.95)


def test_scenario_energy_is_power_times_device_seconds(a100):
    e = scenario_energy(1e21, a100, DType.BF16, 0.5, pue=1.2)
    assert e.device_seconds == pytest.approx(1e21 / (312e12 * 0.5))
    assert e.it_energy_j == pytest.approx(e.power_w * e.device_seconds)
    assert e.facility_energy_j == pytest.approx(1.2 * e.it_energy_j)


def test_energy_per_inference():
    assert energy_per_inference_j(0.095, 40e6) == pytest.approx(2.375e-9)
    assert device_energy_per_inference_j(simhw.load_hw("econ-t")) == pytest.approx(2.375e-9)
    with pytest.raises(SimhwError):
        energy_per_inference_j(0.0, 40e6)
    with pytest.raises(SimhwError):
        device_energy_per_inference_j(simhw.load_hw("pm1733"))


# --- material -------------------------------------------------------------------------------

def test_gpus_needed_and_savings():
    assert gpus_needed(312e12 * 0.5 * 100, 312e12, 0.5, 100) == pytest.approx(1.0)
    assert reduction(60, 20) == pytest.approx(2 / 3)
    assert factor_for_reduction(0.93) == pytest.approx(14.2857, rel=1e-4)
    assert whole_gpus(3.0000000001) == 3 and whole_gpus(3.2) == 4 and whole_gpus(0.1) == 1
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(SimhwError):
            gpus_needed(1e20, 312e12, bad, YEAR_S)
    with pytest.raises(SimhwError):
        gpus_needed(1e20, 312e12, 0.5, 0.0)
    with pytest.raises(SimhwError):
        factor_for_reduction(1.0)


def test_composition_table(a100):
    comp = composition(a100)
    assert sum(comp.element_shares.values()) == pytest.approx(1.0)
    assert comp.heavy_metal_share == pytest.approx(0.90)               # Falk et al. abstract
    named = [e for e in sorted(comp.element_shares, key=comp.element_shares.get, reverse=True)
             if not e.startswith("other")][:5]
    assert set(named) == {"Cu", "Fe", "Sn", "Si", "Ni"}                # the abstract's dominant five
    assert "Si" not in comp.heavy_metals and "Cu" in comp.heavy_metals
    assert comp.mass_unverified and comp.mass_per_gpu_kg == pytest.approx(7000 / 8800)
    assert default_mass_kg() == pytest.approx(0.7955, abs=1e-4)
    heavy = dataclasses.replace(a100, mass_kg=2.0)
    c2 = composition(heavy)
    assert c2.mass_per_gpu_kg == 2.0 and not c2.mass_unverified


def test_material_for(a100):
    m = material_for(100, composition(a100))
    assert m.total_kg == pytest.approx(100 * 7000 / 8800)
    assert m.heavy_metals_kg == pytest.approx(0.9 * m.total_kg)
    assert sum(m.elements_kg.values()) == pytest.approx(m.total_kg)
    assert m.to_dict()["elements_kg"]["Cu"] == m.elements_kg["Cu"]


# --- economics ------------------------------------------------------------------------------

def test_economics():
    assert cloud_usd(3600.0, 2.0 / 3600) == pytest.approx(2.0)
    assert capex_usd(8, 15000) == 120000
    e = economics(8, 0.5 * YEAR_S, 15000, 1.8 / 3600, 5 * YEAR_S)
    assert e.device_hours == pytest.approx(8 * 0.5 * YEAR_S / 3600)
    assert e.cloud_usd == pytest.approx(e.device_hours * 1.8)
    assert e.capex_amortised_usd == pytest.approx(120000 * 0.1)


# --- option parsing -------------------------------------------------------------------------

def test_parse_mfus():
    assert parse_mfus("0.2,0.6") == (0.2, 0.6)
    assert parse_mfus("20%, 60%,0.2") == (0.2, 0.6)
    assert parse_mfus("1") == (1.0,)


@pytest.mark.parametrize("text", ["0.2,,0.6", "abc", "0.2;0.6", "", "0", "1.5", "-0.1", "0.2,120%"])
def test_parse_mfus_rejects(text):
    with pytest.raises(SimhwError, match="--mfu"):
        parse_mfus(text)


def test_parse_lifespans():
    assert parse_lifespans("1y,3y") == (YEAR_S, 3 * YEAR_S)
    assert parse_lifespans("18mo") == (1.5 * YEAR_S,)
    assert parse_lifespans("365d, 2 years") == (365 * 86400.0, 2 * YEAR_S)
    assert parse_lifespans("1 year") == (pytest.approx(YEAR_S),)


@pytest.mark.parametrize("text", ["3", "1y,3", "three years", "0y", "1y,,3y", "-1y"])
def test_parse_lifespans_rejects(text):
    with pytest.raises(SimhwError, match="--lifespan"):
        parse_lifespans(text)


def test_parse_grid():
    assert parse_grid("usa") == ("usa", 380.0)
    assert parse_grid("Taiwan") == ("taiwan", 583.0)
    assert parse_grid("450") == ("450 g/kWh", 450.0)
    assert parse_grid("450 g/kWh") == ("450 g/kWh", 450.0)
    assert parse_grid(0) == ("0 g/kWh", 0.0)
    for bad in ("mars", "-5", "12 parsecs"):
        with pytest.raises(SimhwError):
            parse_grid(bad)


def test_parse_pue_and_budget():
    assert parse_pue("1.1") == 1.1
    for bad in ("0.9", "x", "nan"):
        with pytest.raises(SimhwError, match="--pue"):
            parse_pue(bad)
    assert parse_positive("2.1e25", "--total-flops", "2.1e25") == 2.1e25
    for bad in ("-1", "0", "lots"):
        with pytest.raises(SimhwError, match="--tokens"):
            parse_positive(bad, "--tokens", "13e12")


# --- the whole footprint --------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    wl = simhw.load_workload(ROOT / "workloads/llama2-7b-train.yaml")
    hw = simhw.load_hw("a100")
    return wl, hw, simhw.estimate(wl, hw)


def test_run_as_configured_is_estimate_times_steps(small):
    wl, hw, est = small
    r = footprint(wl, hw, total_flops=1e23, pue=1.2, grid="europe", estimate_result=est)
    steps = 1e23 / est.model_flops
    assert r.run.steps == pytest.approx(steps)
    assert r.run.run_time_s == pytest.approx(steps * est.step_time_s)
    assert r.run.energy_j == pytest.approx(1.2 * steps * est.energy_j)
    assert r.run.operational_kgco2e == pytest.approx(r.run.energy_j * 295e-3 / 3.6e6)
    emb = embodied_per_device(hw).total_kgco2e
    assert r.run.embodied_whole_kgco2e == pytest.approx(est.devices * emb)
    assert r.run.embodied_amortised_kgco2e == pytest.approx(est.devices * emb * r.run.run_time_s / hw.lifespan_s)
    assert r.run.economics.cloud_usd == pytest.approx(est.devices * r.run.run_time_s * hw.cloud_usd_per_s)
    assert r.run.economics.capex_usd == est.devices * hw.price_usd


def test_scenarios_cover_the_grid(small):
    wl, hw, est = small
    r = footprint(wl, hw, total_flops=1e23, mfus=(0.2, 0.4, 0.6), lifespans_s=(YEAR_S, 3 * YEAR_S),
                  estimate_result=est)
    assert [(s.mfu, s.lifespan_s) for s in r.scenarios] == [(m, t) for m in (0.2, 0.4, 0.6)
                                                            for t in (YEAR_S, 3 * YEAR_S)]
    for s in r.scenarios:
        assert s.gpus_exact == pytest.approx(1e23 / (312e12 * s.mfu * s.lifespan_s))
        assert s.gpus == whole_gpus(s.gpus_exact)
        assert s.device_seconds == pytest.approx(1e23 / (312e12 * s.mfu))
        assert s.energy_j == pytest.approx(1.1 * s.power_w * s.device_seconds)
        assert s.embodied_kgco2e == pytest.approx(s.gpus * embodied_per_device(hw).total_kgco2e)
        assert s.capex_usd == s.gpus * hw.price_usd
        assert s.material.total_kg == pytest.approx(s.gpus * 7000 / 8800)
    # higher MFU: fewer device-seconds, less energy, although each device draws more power
    assert r.scenarios[0].energy_j > r.scenarios[-1].energy_j
    assert r.scenarios[0].power_w < r.scenarios[-1].power_w
    d = r.to_dict()
    assert d["schema"] == "simhw.footprint/1" and len(d["scenarios"]) == 6
    assert d["composition"]["heavy_metal_share"] == pytest.approx(0.9)


def test_budget_sources(small):
    wl, hw, est = small
    per_token = est.model_flops / (est.tokens_per_s * est.step_time_s)
    r = footprint(wl, hw, tokens=2e12, estimate_result=est)
    assert r.budget.total_flops == pytest.approx(2e12 * per_token)
    r = footprint(wl, hw, estimate_result=est)                  # not in training_runs.yaml: Chinchilla
    assert r.budget.tokens == pytest.approx(20 * wl.model.params())
    assert "Hoffmann" in r.budget.source and any(n.startswith("budget:") for n in r.notes)
    with pytest.raises(SimhwError, match="not both"):
        footprint(wl, hw, total_flops=1e23, tokens=1e12, estimate_result=est)


def test_gpt4_default_budget_is_the_listed_estimate():
    wl = simhw.load_workload(ROOT / "workloads/gpt4-train.yaml")
    r = footprint(wl, simhw.load_hw("a100"), mfus=(0.2,), lifespans_s=(YEAR_S,))
    assert r.budget.total_flops == 2.1e25 and "UNVERIFIED" in r.budget.source
    assert r.findings is None                                   # a single scenario has no savings


@pytest.mark.parametrize("kwargs", [{"mfus": (0.0,)}, {"mfus": (1.2,)}, {"mfus": ()},
                                    {"lifespans_s": (0.0,)}, {"pue": 0.5}, {"grid": "atlantis"}])
def test_footprint_rejects_bad_arguments(small, kwargs):
    wl, hw, est = small
    with pytest.raises(SimhwError):
        footprint(wl, hw, total_flops=1e23, estimate_result=est, **kwargs)


def test_node_spec_counts_accelerators(small):
    wl, _, _ = small
    r = footprint(wl, simhw.load_hw("dgx-a100"), total_flops=1e22)
    assert "a100" in r.hardware and any("node spec" in n for n in r.notes)


def test_modules_are_small_and_command_is_lazy():
    for path in list((ROOT / "simhw/footprint").glob("*.py")) + [ROOT / "simhw/commands/footprint.py"]:
        assert len(path.read_text().splitlines()) <= 400, path
    code = ("import sys, simhw.commands.footprint as f; "
            "print(any(m.startswith(('simhw.footprint', 'simhw.cost', 'yaml', 'pint')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
