"""Dollars: cloud rental (device-hours x $/h) and purchase (devices x price), amortised over life.

Prices come from the hardware spec (``economics.price``, ``economics.cloud``); the shipped ones are
UNVERIFIED snapshots (hw-facts §1c) to override for a real contract. Amortisation is linear over
the device's lifespan, as LLMCarbon amortises embodied carbon (embodied.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .carbon import amortised


@dataclass(frozen=True)
class Economics:
    device_seconds: float
    cloud_usd: float
    capex_usd: float
    capex_amortised_usd: float

    @property
    def device_hours(self) -> float:
        return self.device_seconds / 3600.0

    def to_dict(self) -> dict:
        return {**asdict(self), "device_hours": self.device_hours}


def cloud_usd(device_seconds: float, cloud_usd_per_s: float) -> float:
    """Rental cost: device-seconds x $/s (the spec stores $/h as $/s)."""
    return device_seconds * cloud_usd_per_s


def capex_usd(devices: float, price_usd: float) -> float:
    """Purchase cost of ``devices`` at ``price_usd`` each."""
    return devices * price_usd


def economics(devices: float, run_time_s: float, price_usd: float, cloud_usd_per_s: float,
              lifespan_s: float) -> Economics:
    """Cloud cost of ``devices`` for ``run_time_s``; capex whole and amortised over ``lifespan_s``."""
    capex = capex_usd(devices, price_usd)
    return Economics(device_seconds=devices * run_time_s, cloud_usd=cloud_usd(devices * run_time_s, cloud_usd_per_s),
                     capex_usd=capex, capex_amortised_usd=amortised(capex, run_time_s, lifespan_s))
