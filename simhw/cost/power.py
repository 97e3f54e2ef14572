"""The board's power limit: the DVFS clock a kernel's own draw allows, in three thermal states.

A GPU held at its power limit (power.tdp) lowers its clock until its draw fits (dvfs_scale). How
fast it then runs depends on the die's temperature: simhw's own H100 runs
(validate/data/h100-2026-11-26) give an 8192^3 bf16 GEMM 0.79 of peak in bursts of 20-100 ms
after idle (die about 35 C) and 0.68 after 5 s (62 C), at the same 700 W. Memory-bound kernels
(SDPA decode, an HBM copy at 524 W) and the attention rows run as fast in both states, so the
extra draw of a hot die follows the tensor cores' activity: it is modelled as FLOP energy
``energy.hot_flop_factor`` times the spec's (cool-die) ``energy.flop``. The likely causes, a higher
voltage for the same clock and more leakage in the hot SMs, are not separated.

- ``PowerState.STEADY``: the die at its sustained temperature (a board held at its limit for
  minutes to hours): FLOPs cost hot_flop_factor x energy.flop. Training estimates use it
  (cost/estimate.py default_power).
- ``PowerState.BURST``: power-limited but the die near idle temperature (benchmark loops of
  milliseconds to about a second, profiler captures soon after a run starts): energy.flop.
  Measurement rows use it unless they say otherwise (validation/schema.py), and so do serving
  estimates, whose prefills run between decode steps far under the limit.
- ``PowerState.FULL``: no limit: bursts too short for the power controller, or data that barely
  switch (weights never initialised), as in aiconfigurator's CUDA-graph collector.

A burst that lasts ``held_s`` seconds at the limit warms the die as it runs: the die's excess
temperature rises as 1 - exp(-t / energy.hot_time_constant) (one thermal time constant, Newton's
law of cooling), so over the burst the FLOPs cost on average
``1 + (hot_flop_factor - 1) x (1 - tau / held_s x (1 - exp(-held_s / tau)))`` times energy.flop
(hot_factor). The H100's tau, 0.26 s, is the one at which this reproduces its GEMM bursts of
17 ms to 0.94 s after idle (783 to 696 TFLOP/s; validate/data/h100-2026-11-26/power_bursts.csv).
Serving estimates pass their step's length (a prefill of seconds warms the die); measurement rows
their ``held_s`` column. Without held_s, or with tau 0, a burst is priced cool.

A spec without ``energy.hot_flop_factor`` (1) prices STEADY as BURST.
"""
from __future__ import annotations

import enum
import math
from dataclasses import replace
from typing import Iterable

from ..spec.model import DeviceSpec
from .roofline import Bound, OpCost


class PowerState(enum.Enum):
    STEADY = "steady"
    BURST = "burst"
    FULL = "full"


POWER_STATES = tuple(s.value for s in PowerState)


def power_limited(cost: OpCost, device: DeviceSpec, state: PowerState = PowerState.STEADY,
                  clock: float | None = None, held_s: float | None = None) -> OpCost:
    """``cost`` (at full clock) of a kernel run at the clock the power limit leaves it in ``state``:
    ``clock`` when given (a window's clock, step_clock), else the clock of its own draw above idle
    (FLOP and byte energy over the kernel, the FLOPs at hot_flop_factor in STEADY, plus
    power.active: dvfs_scale), as for a kernel run in a loop of its own. The kernel takes 1/s as
    long and s^2 of its energy; the launch is not stretched. A GEMM at the full-clock compute
    fraction so settles at the measured (or MAMF) rate the spec's energy per FLOP and hot factor
    were derived from; memory-bound kernels draw less and keep full clock (and their cool-die
    energy). ``held_s``: how long a BURST holds the board at its limit (hot_factor)."""
    launch = device.efficiency.launch_s
    body = cost.time_s - launch
    if state is PowerState.FULL or body <= 0 or device.tdp_w <= device.busy_w:
        return cost
    hot = hot_factor(device, state, held_s)
    dynamic = cost.energy_j + (hot - 1.0) * cost.flop_energy_j
    if clock is None:
        clock = dvfs_scale(dynamic + device.active_w * body, body, device.tdp_w - device.idle_w)
    if clock >= 1.0:
        return cost
    # the step charges power.active over the op's (stretched) time; at clock s it really draws
    # active x s^3 over body / s, so the op's energy carries the difference
    active_j = device.active_w * body
    energy = (dynamic + active_j) * clock ** 2 - active_j / clock
    return replace(cost, time_s=body / clock + launch, compute_s=cost.compute_s / clock,
                   energy_j=energy, flop_energy_j=hot * cost.flop_energy_j * clock ** 2,
                   power_limit_s=body / clock - body)


def step_clock(costs: Iterable[tuple[OpCost, float]], device: DeviceSpec,
               state: PowerState = PowerState.STEADY, held_s: float | None = None) -> float:
    """The one DVFS clock at which a window of kernels, ``(full-clock cost, count)`` pairs, draws
    at most power.tdp on average. The power controller averages the board's draw over
    milliseconds, far longer than most kernels of a training or serving step, so the clock follows
    the step's mix: a GEMM between memory-bound kernels runs faster than held alone. Transfers
    (Bound.COMMUNICATION) and launches are left out; every kernel is stretched by 1/clock (HBM-bound
    kernels slow with the SM clock too). ``held_s`` as in power_limited."""
    if state is PowerState.FULL or device.tdp_w <= device.busy_w:
        return 1.0
    hot = hot_factor(device, state, held_s)
    launch = device.efficiency.launch_s
    body = dynamic = 0.0
    for cost, count in costs:
        b = cost.time_s - launch
        if cost.bound is Bound.COMMUNICATION or b <= 0:
            continue
        body += b * count
        dynamic += (cost.energy_j + (hot - 1.0) * cost.flop_energy_j) * count
    return dvfs_scale(dynamic + device.active_w * body, body, device.tdp_w - device.idle_w)


def hot_factor(device: DeviceSpec, state: PowerState, held_s: float | None = None) -> float:
    """Energy per FLOP over energy.flop: hot_flop_factor in STEADY; in a BURST held at the limit
    for ``held_s`` seconds, the factor's share that the die's average warming over the burst
    reaches (module doc); 1 otherwise."""
    if state is PowerState.STEADY:
        return device.hot_flop_factor
    tau = device.hot_time_constant_s
    if state is PowerState.FULL or not held_s or held_s <= 0 or tau <= 0:
        return 1.0
    x = held_s / tau
    warmed = 1.0 - (1.0 - math.exp(-x)) / x
    return 1.0 + (device.hot_flop_factor - 1.0) * warmed


def dvfs_scale(dynamic_j: float, time_s: float, budget_w: float) -> float:
    """Clock scale s <= 1 at which work of ``dynamic_j`` joules over ``time_s`` (at full clock) fits
    a power budget ``budget_w`` (power.tdp - power.idle; the caller counts power.active, the clock
    tree and operating point's draw, in ``dynamic_j``: it scales with the clock as well).

    In the DVFS range the supply voltage tracks the clock, so dynamic energy per operation scales
    with V^2 ~ s^2 while the work takes 1/s as long: dynamic power ~ s^3 (CMOS P = C V^2 f; e.g.
    Horowitz, ISSCC 2014, and any DVFS text). The work then takes time_s / s at s^2 x dynamic_j.
    Used per op (power_limited) and per step (step_clock). All of the work is stretched, even the
    part bound by HBM, whose clock does not drop (HBM-bound GEMMs measured on H100 slow with the SM
    clock too); the voltage floor, below which power falls only linearly with the clock, is not
    modelled.
    """
    if time_s <= 0 or dynamic_j <= 0 or budget_w <= 0 or dynamic_j / time_s <= budget_w:
        return 1.0
    return (budget_w * time_s / dynamic_j) ** (1.0 / 3.0)
