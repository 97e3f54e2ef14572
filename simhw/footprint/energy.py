"""Energy: of a whole run (from a step estimate), of an MFU scenario (from the device power model),
and per inference of a fixed-rate accelerator.

* Run as configured: ``energy = energy_per_step x steps`` where the step's energy is the cost
  model's (dynamic per-FLOP and per-byte energy of every op plus (idle + active) power x step time,
  simhw/cost/estimate.py), and ``steps = C_train / model_FLOPs_per_step``.
* MFU scenario (Falk et al., arXiv 2512.04142: N GPUs at a given MFU): each device draws
  ``P = idle + active + e_flop x R_peak x MFU`` (capped at TDP), for ``C_train / (R_peak x MFU)``
  device-seconds in all; ``e_flop`` is the spec's dynamic energy per FLOP. A spec without
  ``e_flop`` falls back to ``(TDP - idle - active) x min(1, MFU / compute_fraction)``.
* Facility energy is IT energy x PUE (power usage effectiveness, The Green Grid).
* A fixed-function accelerator that finishes one inference per cycle of its rate uses
  ``E = P / f`` per inference (Di Guglielmo et al., arXiv 2105.01683, seed-targets §15a:
  95 mW / 40 MHz = 2.375 nJ, stated 2.4 nJ).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..spec.model import DeviceSpec, DType
from ._tables import FootprintError


def peak_flop_per_s(device: DeviceSpec, dtype: DType) -> float:
    """Dense peak FLOP/s of ``device`` for ``dtype`` (R_peak of Falk et al.)."""
    try:
        return device.peak(dtype)
    except KeyError:
        raise FootprintError(f"{device.name} has no peak FLOP/s for {dtype.value} (nor a wider format); "
                             "footprint scenarios need one.") from None


def device_power_w(device: DeviceSpec, dtype: DType, mfu: float) -> float:
    """Average power of one device running at ``mfu`` of its ``dtype`` peak (module docstring)."""
    peak = peak_flop_per_s(device, dtype)
    e_flop = device.flop_energy(dtype)
    if e_flop > 0:
        dynamic = e_flop * peak * mfu
    else:
        frac = device.efficiency.compute_fraction or 1.0
        dynamic = max(0.0, device.tdp_w - device.busy_w) * min(1.0, mfu / frac)
    power = device.busy_w + dynamic
    return min(power, device.tdp_w) if device.tdp_w > 0 else power


@dataclass(frozen=True)
class ScenarioEnergy:
    """Energy of C_train FLOPs done at one MFU: device-seconds, per-device power, IT and facility J."""

    device_seconds: float
    power_w: float
    it_energy_j: float
    facility_energy_j: float


def scenario_energy(total_flops: float, device: DeviceSpec, dtype: DType, mfu: float,
                    pue: float = 1.0) -> ScenarioEnergy:
    """``device-seconds = C / (R_peak x MFU)``, ``E = P(MFU) x device-seconds x PUE`` (module docstring).

    The device-seconds do not depend on how many devices share the work (nor on their lifespan).
    """
    device_s = total_flops / (peak_flop_per_s(device, dtype) * mfu)
    power = device_power_w(device, dtype, mfu)
    it = power * device_s
    return ScenarioEnergy(device_seconds=device_s, power_w=power, it_energy_j=it, facility_energy_j=it * pue)


def run_energy_j(energy_per_step_j: float, steps: float, pue: float = 1.0) -> float:
    """Facility energy of ``steps`` steps of an estimate: ``energy_per_step x steps x PUE``."""
    return energy_per_step_j * steps * pue


def energy_per_inference_j(power_w: float, inference_rate_hz: float) -> float:
    """``E = P / f`` (Di Guglielmo et al. 2021, seed-targets §15a): 0.095 W / 40 MHz = 2.375 nJ."""
    if power_w <= 0 or inference_rate_hz <= 0:
        raise FootprintError(f"energy per inference needs a positive power and rate, got "
                             f"{power_w} W and {inference_rate_hz} Hz.")
    return power_w / inference_rate_hz


def device_energy_per_inference_j(device: DeviceSpec) -> float:
    """``E = TDP / rate`` for a spec with ``power.tdp`` and ``extra.inference_rate`` (or its clock,
    one inference per cycle), e.g. hwspecs/econ-t-asic-65nm.yaml -> 2.375 nJ."""
    rate = float(device.extra.get("inference_rate", 0.0) or device.clock_hz)
    if device.tdp_w <= 0 or rate <= 0:
        raise FootprintError(f"{device.name}: energy per inference needs power.tdp and extra.inference_rate "
                             "(or compute.clock) in the spec.")
    return energy_per_inference_j(device.tdp_w, rate)
