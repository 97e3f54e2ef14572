"""Carbon: operational (energy x grid intensity) and embodied (ACT's fab model) CO2e.

Embodied carbon of a chip follows ACT (Gupta et al., ISCA 2022, "ACT22"; logic_model.py):
``CPA = (CI_fab * EPA + GPA + MPA) / yield`` per process node, times die area; main memory costs
capacity x DRAM g CO2e/GB / yield (ACT dram_model.py), with ACT's ddr4_10nm figure as a PROXY for
HBM (ACT has no HBM entry). Grid intensities are ACT's location table (carbon_intensity/
location.json): world 301, USA 380, Europe 295, Taiwan 583 g/kWh. LLMCarbon's per-node CPA (Faiz et
al., ICLR 2024, data/hardware.csv) is reported beside ACT's as a cross-check. Amortisation over a
device's life is LLMCarbon's ``embodied * t_exec / lifespan`` (embodied.py). Data:
``data/act.yaml``, ``data/llmcarbon.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..spec.model import DeviceSpec
from ._tables import FootprintError, table

J_PER_KWH = 3.6e6
M2_PER_CM2 = 1e-4
BYTES_PER_GB = 1e9


def kg_per_j(g_per_kwh: float) -> float:
    """Grid intensity in g CO2e/kWh -> kg CO2e per joule."""
    return g_per_kwh * 1e-3 / J_PER_KWH


def grid_names() -> tuple[str, ...]:
    """Locations with an ACT grid intensity (ACT22 carbon_intensity/location.json)."""
    return tuple(table("act")["grid_g_per_kwh"])


def grid_g_per_kwh(name: str) -> float:
    """ACT22 location-based grid intensity of ``name`` (world, usa, europe, taiwan, ...)."""
    grids = table("act")["grid_g_per_kwh"]
    key = str(name).strip().lower()
    if key not in grids:
        raise FootprintError(f"grid {name!r} is unknown; choose one of {', '.join(grids)} "
                             "(ACT22 location intensities) or give a number in g/kWh.")
    return float(grids[key])


def operational_kgco2e(energy_j: float, g_per_kwh: float) -> float:
    """Operational CO2e of ``energy_j`` drawn from a grid of ``g_per_kwh`` (ACT22 Eq. 1's OP term)."""
    return energy_j * kg_per_j(g_per_kwh)


@dataclass(frozen=True)
class ActNode:
    """The ACT22 node row used for a chip's process, and whether it lies outside ACT's 3-28 nm."""

    process_nm: float
    act_node_nm: int
    extrapolated: bool


def act_node(process_nm: float) -> ActNode:
    """Nearest ACT22 node row to ``process_nm``; ties go to the older (larger) node, as the shipped
    specs do (12 nm -> 14 nm, 4N -> 5 nm); outside 3-28 nm the nearest end row, flagged."""
    nodes = sorted(int(n) for n in table("act")["logic"])
    best = min(nodes, key=lambda n: (abs(n - process_nm), -n))
    return ActNode(process_nm, best, not nodes[0] <= process_nm <= nodes[-1])


def cpa_kg_per_m2(process_nm: float, fab_location: str = "taiwan", gpa: str = "97") -> float:
    """ACT22 carbon per area ``(CI_fab*EPA + GPA + MPA)/yield`` in kg CO2e per m^2 of die.

    ``gpa`` is ACT's abatement choice: "95", "99" or "97" (ACT's default, the mean of the two).
    """
    act = table("act")
    row = act["logic"][act_node(process_nm).act_node_nm]
    gas = {"95": row["gpa95_g_per_cm2"], "99": row["gpa99_g_per_cm2"],
           "97": (row["gpa95_g_per_cm2"] + row["gpa99_g_per_cm2"]) / 2}.get(str(gpa))
    if gas is None:
        raise FootprintError(f"ACT abatement {gpa!r} is unknown; choose 95, 97 or 99.")
    g_per_cm2 = (grid_g_per_kwh(fab_location) * row["epa_kwh_per_cm2"] + gas + row["mpa_g_per_cm2"]) / act["yield"]
    return g_per_cm2 * 1e-3 / M2_PER_CM2


def dram_kg_per_byte(kind: str | None = None) -> float:
    """ACT22 DRAM CO2e per byte (g/GB / yield); default: the HBM proxy (ddr4_10nm)."""
    act = table("act")
    kind = kind or act["hbm_proxy"]
    return act["dram_g_per_gb"][kind] / act["yield"] * 1e-3 / BYTES_PER_GB


def llmcarbon_cpa_kg_per_m2(process_nm: float) -> float:
    """LLMCarbon's CPA for ``process_nm`` when its hardware table has that node, else 0."""
    rows = table("llmcarbon")["cpa_kg_per_cm2"]
    row = rows.get(int(round(process_nm))) if process_nm else None
    return row["cpa"] / M2_PER_CM2 if row else 0.0


@dataclass(frozen=True)
class Embodied:
    """Embodied CO2e of one device: die (ACT22 CPA x area) plus main memory (ACT22 DRAM g/GB)."""

    die_kgco2e: float
    memory_kgco2e: float
    die_area_m2: float
    process_nm: float
    act_node_nm: int
    node_extrapolated: bool
    cpa_kg_per_m2: float
    memory_bytes: float
    memory_kg_per_byte: float
    method: str                    # "act" or "spec" (die area/process missing: the spec's figure)
    spec_kgco2e: float
    llmcarbon_die_kgco2e: float    # 0 when LLMCarbon's table lacks the node

    @property
    def total_kgco2e(self) -> float:
        return self.die_kgco2e + self.memory_kgco2e

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["total_kgco2e"] = self.total_kgco2e
        out["memory_proxy"] = f"ACT {table('act')['hbm_proxy']} (proxy for HBM, UNVERIFIED)"
        return out


def embodied_per_device(device: DeviceSpec, fab_location: str = "taiwan") -> Embodied:
    """Embodied CO2e of one ``device`` (ACT22; see the module docstring)."""
    mem_bytes = device.memory[0].capacity_bytes if device.memory else 0.0
    per_byte = dram_kg_per_byte() if mem_bytes else 0.0
    if device.die_area_m2 > 0 and device.process_nm > 0:
        node = act_node(device.process_nm)
        cpa = cpa_kg_per_m2(device.process_nm, fab_location)
        die = cpa * device.die_area_m2
        method = "act"
    else:  # e.g. an SSD: no die in the spec; keep the spec's own embodied figure
        node, cpa, die, method = ActNode(device.process_nm, 0, False), 0.0, device.embodied_kgco2e, "spec"
        mem_bytes, per_byte = 0.0, 0.0   # the spec's figure covers the whole part (e.g. NAND)
    llm = llmcarbon_cpa_kg_per_m2(device.process_nm) * device.die_area_m2
    return Embodied(die_kgco2e=die, memory_kgco2e=mem_bytes * per_byte, die_area_m2=device.die_area_m2,
                    process_nm=device.process_nm, act_node_nm=node.act_node_nm,
                    node_extrapolated=node.extrapolated, cpa_kg_per_m2=cpa, memory_bytes=mem_bytes,
                    memory_kg_per_byte=per_byte, method=method, spec_kgco2e=device.embodied_kgco2e,
                    llmcarbon_die_kgco2e=llm)


def amortised(whole: float, run_time_s: float, lifespan_s: float) -> float:
    """The share of ``whole`` (kg or $) a run of ``run_time_s`` uses of a ``lifespan_s`` life
    (LLMCarbon embodied.py: ``embodied * t_exec / lifespan``; above ``whole`` when the run outlasts
    the devices, which then need replacing). No lifespan: the whole."""
    if lifespan_s <= 0:
        return whole
    return whole * run_time_s / lifespan_s
