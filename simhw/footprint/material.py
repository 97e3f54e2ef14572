"""Material: how many GPUs a training run uses up, and what they are made of.

Falk et al., "From FLOPs to Footprints: The Resource Cost of Artificial Intelligence"
(arXiv 2512.04142), abstract: GPT-4 training needs 1,174-8,800 A100 GPUs depending on MFU and
lifespan; raising MFU from 20% to 60% cuts the count by about 67%, a 1 -> 3 year lifespan gives a
comparable saving, "both together up to 93%"; an A100 SXM 40 GB is about 90% heavy metals by mass,
mostly Cu, Fe, Sn, Si and Ni. The implied model (seed-targets §4c, D) is

    N = C_train / (R_peak x MFU x T_life)

i.e. every GPU spends its whole life on this one run. MFU x3 and lifespan x3 together give
1 - 1/9 = 88.9%, not 93%: 93% needs a factor 1/(1 - 0.93) = 14.3 (e.g. MFU x3 with 1 -> 5 years).
Composition and the default GPU mass: ``data/gpu_composition.yaml`` (element shares UNVERIFIED).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..spec.model import DeviceSpec
from ._tables import FootprintError, table


def gpus_needed(total_flops: float, peak_flop_per_s: float, mfu: float, lifespan_s: float) -> float:
    """Falk et al.'s ``N = C_train / (R_peak x MFU x T_life)`` (not rounded)."""
    if not (0 < mfu <= 1):
        raise FootprintError(f"MFU {mfu!r} is outside (0, 1].")
    if total_flops <= 0 or peak_flop_per_s <= 0 or lifespan_s <= 0:
        raise FootprintError("the GPU count needs positive FLOPs, peak FLOP/s and lifespan.")
    return total_flops / (peak_flop_per_s * mfu * lifespan_s)


def whole_gpus(n: float) -> int:
    """Devices come whole: the ceiling of ``n`` (ignoring float noise of 1e-9)."""
    return max(1, math.ceil(n - 1e-9))


def reduction(n_before: float, n_after: float) -> float:
    """Fractional saving ``1 - after / before`` (Falk et al.: 1 - 20/60 = 66.7% for MFU 20% -> 60%)."""
    return 1.0 - n_after / n_before


def factor_for_reduction(saving: float) -> float:
    """The combined MFU x lifespan factor a saving needs: ``1 / (1 - saving)`` (93% -> 14.3)."""
    if not 0 <= saving < 1:
        raise FootprintError(f"saving {saving!r} must be in [0, 1).")
    return 1.0 / (1.0 - saving)


@dataclass(frozen=True)
class Composition:
    """What one GPU is made of: its mass and each element's mass share."""

    mass_per_gpu_kg: float
    mass_source: str
    mass_unverified: bool
    element_shares: Mapping[str, float]
    heavy_metals: frozenset[str]
    shares_status: str = "UNVERIFIED"

    @property
    def heavy_metal_share(self) -> float:
        return sum(s for e, s in self.element_shares.items() if e in self.heavy_metals)


def default_mass_kg() -> float:
    """UNVERIFIED default GPU mass (D): Falk et al.'s "up to 7 t" for 8,800 GPUs -> 0.795 kg."""
    m = table("gpu_composition")["default_mass"]
    return float(m["total_kg"]) / float(m["gpus"])


def composition(device: DeviceSpec | None = None) -> Composition:
    """The composition table with ``device``'s ``silicon.mass`` when its spec has one, else the
    UNVERIFIED default mass (see :func:`default_mass_kg`)."""
    data = table("gpu_composition")
    shares = {str(k): float(v["share"]) for k, v in data["elements"].items()}
    if abs(sum(shares.values()) - 1.0) > 1e-9:
        raise FootprintError("data/gpu_composition.yaml: element shares do not sum to 1; reinstall simhw.")
    heavy = frozenset(str(k) for k, v in data["elements"].items() if v.get("heavy_metal"))
    if device is not None and device.mass_kg > 0:
        mass, src, unverified = device.mass_kg, f"spec {device.name} silicon.mass", False
    else:
        mass = default_mass_kg()
        src = ("UNVERIFIED default: " + data["default_mass"]["source"]
               + (f"; spec {device.name} has no silicon.mass" if device is not None else ""))
        unverified = True
    return Composition(mass, src, unverified, MappingProxyType(shares), heavy)


@dataclass(frozen=True)
class Material:
    """Mass of ``gpus`` devices, of their heavy metals and of each element (kg)."""

    gpus: float
    mass_per_gpu_kg: float
    total_kg: float
    heavy_metals_kg: float
    elements_kg: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "mass_per_gpu_kg": self.mass_per_gpu_kg, "total_kg": self.total_kg,
                "heavy_metals_kg": self.heavy_metals_kg, "elements_kg": dict(self.elements_kg)}


def material_for(gpus: float, comp: Composition) -> Material:
    """Element masses of ``gpus`` devices of composition ``comp``."""
    total = gpus * comp.mass_per_gpu_kg
    elements = {e: total * s for e, s in comp.element_shares.items()}
    return Material(gpus=gpus, mass_per_gpu_kg=comp.mass_per_gpu_kg, total_kg=total,
                    heavy_metals_kg=total * comp.heavy_metal_share, elements_kg=MappingProxyType(elements))
