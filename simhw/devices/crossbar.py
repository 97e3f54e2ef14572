"""Analog in-memory matrix-vector multiply on memristor crossbars, and an LSTM step with an NL-ADC.

Sources: Yang, Mao et al., "Efficient Nonlinear Function Approximation in Analog Resistive Crossbars
for Recurrent Neural Networks" (arXiv 2411.18271; Nat. Commun. 16, 2025), seed-targets §15b: a ramp
ADC whose ramp is an extra memristor column computes sigmoid/tanh while converting, so no separate
activation unit is needed [A]; evaluated at 8/5/4/3 ADC bits, 16 nm, 1 GHz [S]. The tiling and
bit-slicing follow ISAAC-class designs (Shafiee et al., ISCA 2016). ADC energy per conversion grows
as 2^bits (Walden figure of merit, E = FOM · 2^ENOB; Walden, IEEE JSAC 1999); a ramp ADC takes
2^bits steps, so its conversion time grows the same way.

Model for a ``rows x cols`` weight matrix on ``array_rows x array_cols`` crossbars:

* slices = ceil(weight_bits / cell_bits); tiles = ceil(rows/array_rows) · ceil(cols/array_cols) · slices.
* input cycles = ceil(input_bits / dac_bits) (bit-serial inputs).
* conversions = cols · slices · ceil(rows/array_rows) · input cycles (every used column of every tile
  converts once per input cycle); energy = conversions · E_adc(bits) + cell reads · E_cell
  + row-driver activations · E_dac + conversions · E_shift_add (digital merge of partial sums).
* latency = input cycles · (array read time + ADC time(bits) · ceil(array_cols / adcs_per_array));
  all tiles work in parallel.

Most crossbar constants in hwspecs/memristor-crossbar-16nm.yaml are UNVERIFIED placeholders; those
not in the spec at all take the defaults of :data:`DEFAULTS` (also UNVERIFIED, named there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..spec.model import DeviceSpec

# Defaults for constants absent from the spec's ``extra:``. Every one is UNVERIFIED: a
# literature-typical placeholder, not a number from the NL-ADC paper.
DEFAULTS: dict[str, float] = {
    "array_rows": 64.0,                 # UNVERIFIED
    "array_cols": 64.0,                 # UNVERIFIED
    "adc_bits": 5.0,                    # reference resolution of adc_energy / adc_time
    "adc_energy": 2e-12,                # UNVERIFIED: J per conversion at adc_bits
    "adc_time": 32e-9,                  # UNVERIFIED: 2^5 ramp steps at 1 GHz
    "input_bits": 8.0,                  # UNVERIFIED
    "dac_bits": 1.0,                    # UNVERIFIED: bit-serial inputs
    "cell_bits": 4.0,                   # UNVERIFIED: falls back to the spec's extra.weight_bits (bits per cell)
    "cell_read_energy": 1e-15,          # UNVERIFIED: J per cell per read
    "dac_energy": 50e-15,               # UNVERIFIED: J per row-driver activation (1-bit DAC)
    "shift_add_energy": 50e-15,         # UNVERIFIED: J per digital shift-and-add of one partial sum
    "array_read_time": 1e-9,            # UNVERIFIED: one 1 GHz cycle to settle the column currents
    "adcs_per_array": 64.0,             # UNVERIFIED: one comparator per column sharing the ramp
    "ramp_columns": 1.0,                # [A]: one extra ramp column per array
    "digital_activation_energy": 1e-12, # UNVERIFIED: J per sigmoid/tanh in a digital LUT/PWL unit
    "digital_activation_units": 64.0,   # UNVERIFIED: activations per cycle in the digital baseline
    "digital_op_energy": 0.1e-12,       # UNVERIFIED: J per digital elementwise multiply or add
}


def _x(hw: DeviceSpec, key: str) -> float:
    if key == "cell_bits" and key not in hw.extra:
        return float(hw.extra.get("weight_bits", DEFAULTS["cell_bits"]))
    return float(hw.extra.get(key, DEFAULTS[key]))


def adc_energy_j(hw: DeviceSpec, bits: float) -> float:
    """Energy of one conversion at ``bits``: E_ref · 2^(bits − bits_ref) (Walden FOM)."""
    return _x(hw, "adc_energy") * 2.0 ** (bits - _x(hw, "adc_bits"))


def adc_time_s(hw: DeviceSpec, bits: float) -> float:
    """Ramp-ADC conversion time at ``bits``: t_ref · 2^(bits − bits_ref) (2^bits ramp steps)."""
    return _x(hw, "adc_time") * 2.0 ** (bits - _x(hw, "adc_bits"))


@dataclass(frozen=True)
class CrossbarCost:
    """Cost of one matrix-vector multiply on crossbars."""

    time_s: float
    energy_j: float
    tiles: int
    adc_conversions: float
    adc_energy_j: float = 0.0
    cell_energy_j: float = 0.0
    dac_energy_j: float = 0.0
    shift_add_energy_j: float = 0.0


def mvm_cost(hw: DeviceSpec, rows: int, cols: int, input_bits: int | None = None, weight_bits: int = 8,
             adc_bits: int | None = None) -> CrossbarCost:
    """One ``y = W x`` with ``W`` of ``rows x cols`` (rows = inputs, cols = outputs) on ``hw``.

    ISAAC-style tiling and bit-slicing (Shafiee et al. 2016); ADC scaling by the Walden FOM.
    """
    if min(rows, cols, weight_bits) <= 0:
        raise ValueError("rows, cols and weight_bits must be positive")
    in_bits = _x(hw, "input_bits") if input_bits is None else float(input_bits)
    bits = _x(hw, "adc_bits") if adc_bits is None else float(adc_bits)
    ar, ac = int(_x(hw, "array_rows")), int(_x(hw, "array_cols"))
    slices = math.ceil(weight_bits / _x(hw, "cell_bits"))
    row_tiles, col_tiles = math.ceil(rows / ar), math.ceil(cols / ac)
    tiles = row_tiles * col_tiles * slices
    cycles = math.ceil(in_bits / _x(hw, "dac_bits"))
    conversions = float(cols * slices * row_tiles * cycles)
    ramp_cells = _x(hw, "ramp_columns") * min(rows, ar) * tiles   # ramp column read per conversion cycle
    cell_reads = (rows * cols * slices + ramp_cells) * cycles
    e_adc = conversions * adc_energy_j(hw, bits)
    e_cell = cell_reads * _x(hw, "cell_read_energy")
    e_dac = float(rows * col_tiles * slices * cycles) * _x(hw, "dac_energy")
    e_sa = conversions * _x(hw, "shift_add_energy")
    rounds = math.ceil(min(cols, ac) / _x(hw, "adcs_per_array"))
    time_s = cycles * (_x(hw, "array_read_time") + adc_time_s(hw, bits) * rounds)
    return CrossbarCost(time_s=time_s, energy_j=e_adc + e_cell + e_dac + e_sa, tiles=tiles,
                        adc_conversions=conversions, adc_energy_j=e_adc, cell_energy_j=e_cell,
                        dac_energy_j=e_dac, shift_add_energy_j=e_sa)


@dataclass(frozen=True)
class LstmStepCost:
    """One LSTM time step: gate MVM, activations, elementwise state update."""

    time_s: float
    energy_j: float
    mvm: CrossbarCost
    activation_energy_j: float     # digital sigmoid/tanh units (0 for gate activations with an NL-ADC)
    elementwise_energy_j: float
    nl_adc: bool


def lstm_step_cost(hw: DeviceSpec, input_size: int, hidden_size: int, input_bits: int | None = None,
                   weight_bits: int = 8, adc_bits: int | None = None, nl_adc: bool | None = None) -> LstmStepCost:
    """One step of an LSTM cell: gates = W [x; h] (4·hidden outputs), then
    i, f, o = sigmoid, g = tanh, c' = f·c + i·g, h' = o·tanh(c').

    With ``nl_adc`` (default: the spec's ``extra.nonlinear_in_adc``) the ramp ADC outputs the
    4·hidden gate activations directly (Yang, Mao et al. 2025 [A]), so only tanh(c') needs the
    digital unit; the baseline converts linearly and runs all 5·hidden activations digitally.
    Simplification: the nonlinearity is applied at the conversion of each full gate sum; how
    bit-serial partial sums are merged before a nonlinear conversion is not modelled (UNVERIFIED).
    """
    if min(input_size, hidden_size) <= 0:
        raise ValueError("input_size and hidden_size must be positive")
    if nl_adc is None:
        nl_adc = bool(hw.extra.get("nonlinear_in_adc", 0.0))
    mvm = mvm_cost(hw, input_size + hidden_size, 4 * hidden_size, input_bits, weight_bits, adc_bits)
    digital_acts = hidden_size if nl_adc else 5 * hidden_size
    act_e = digital_acts * _x(hw, "digital_activation_energy")
    elem_e = 4 * hidden_size * _x(hw, "digital_op_energy")   # 3 multiplies + 1 add per hidden unit
    clock = hw.clock_hz or 1e9
    act_t = math.ceil(digital_acts / _x(hw, "digital_activation_units")) / clock
    return LstmStepCost(time_s=mvm.time_s + act_t, energy_j=mvm.energy_j + act_e + elem_e, mvm=mvm,
                        activation_energy_j=act_e, elementwise_energy_j=elem_e, nl_adc=nl_adc)
