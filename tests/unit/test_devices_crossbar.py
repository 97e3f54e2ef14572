"""Unit tests of simhw.devices.crossbar (memristor crossbar MVM and NL-ADC LSTM; seed-targets §15b)."""
from __future__ import annotations

import pytest

import simhw
from simhw.devices.crossbar import adc_energy_j, lstm_step_cost, mvm_cost


@pytest.fixture(scope="module")
def hw():
    return simhw.load_hw("memristor-crossbar-16nm")


def test_tiles_and_conversions(hw):
    # 64x64 arrays, 4-bit cells (spec extra.weight_bits), 8-bit weights -> 2 slices; 8 bit-serial input cycles
    c = mvm_cost(hw, rows=128, cols=256, input_bits=8, weight_bits=8)
    assert c.tiles == 2 * 4 * 2
    assert c.adc_conversions == 256 * 2 * 2 * 8
    assert c.energy_j == pytest.approx(c.adc_energy_j + c.cell_energy_j + c.dac_energy_j + c.shift_add_energy_j)


def test_walden_scaling(hw):
    assert adc_energy_j(hw, 5) == pytest.approx(2e-12)
    assert adc_energy_j(hw, 8) == pytest.approx(8 * adc_energy_j(hw, 5))


def test_fewer_adc_bits_lower_energy_and_time(hw):
    """8/5/4/3-bit NL-ADC sweep of Yang, Mao et al. (seed-targets §15b [S]): monotone."""
    costs = [lstm_step_cost(hw, 40, 128, adc_bits=b) for b in (8, 5, 4, 3)]
    energies = [c.energy_j for c in costs]
    times = [c.time_s for c in costs]
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == 4
    assert times == sorted(times, reverse=True)


def test_nl_adc_saves_energy_over_linear_adc_plus_digital_activation(hw):
    for bits in (8, 5, 4, 3):
        nl = lstm_step_cost(hw, 40, 128, adc_bits=bits, nl_adc=True)
        lin = lstm_step_cost(hw, 40, 128, adc_bits=bits, nl_adc=False)
        assert nl.energy_j < lin.energy_j
        assert nl.time_s <= lin.time_s
        assert nl.activation_energy_j == pytest.approx(lin.activation_energy_j / 5)


def test_spec_default_uses_nl_adc(hw):
    assert lstm_step_cost(hw, 8, 8).nl_adc is True


def test_more_input_bits_cost_more(hw):
    assert mvm_cost(hw, 64, 64, 8, 8).energy_j > mvm_cost(hw, 64, 64, 4, 8).energy_j
    assert mvm_cost(hw, 64, 64, 8, 8).time_s > mvm_cost(hw, 64, 64, 4, 8).time_s


def test_rejects_bad_shapes(hw):
    with pytest.raises(ValueError):
        mvm_cost(hw, 0, 4)
