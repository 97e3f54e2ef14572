"""Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
(arXiv 2205.05198): Table 2 activation memory (exact), Eq. 5/6 pipeline totals, App. A Eq. 7
model FLOPs (exact), and the 70% / 65% selective-recompute savings of §5.
seed-targets.md §1a-§1d. Every number below is computed through simhw's public API.
"""
import pytest

import simhw
from simhw.cost.memory import activation_bytes_per_layer, activations_bytes

from tests.helpers import TABLE3, table3_workload

CONFIGS = list(TABLE3)


def _sbhat(name):
    heads, hidden, layers, tp, pp, gbatch, micro = TABLE3[name]
    return 2048, micro, hidden, heads, tp


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_no_parallelism(name):
    s, b, h, a, _ = _sbhat(name)
    wl = table3_workload(name)
    from dataclasses import replace
    wl = replace(wl, parallelism=replace(wl.parallelism, tp=1))
    assert activation_bytes_per_layer(wl) == pytest.approx(s * b * h * (34 + 5 * a * s / h), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_tensor_parallel(name):
    s, b, h, a, t = _sbhat(name)
    assert activation_bytes_per_layer(table3_workload(name)) == pytest.approx(
        s * b * h * (10 + 24 / t + 5 * a * s / (h * t)), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_tp_sp(name):
    s, b, h, a, t = _sbhat(name)
    assert activation_bytes_per_layer(table3_workload(name, sp=True)) == pytest.approx(
        s * b * h / t * (34 + 5 * a * s / h), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_tp_selective(name):
    s, b, h, a, t = _sbhat(name)
    assert activation_bytes_per_layer(table3_workload(name, recompute="selective")) == pytest.approx(
        s * b * h * (10 + 24 / t), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_tp_sp_selective(name):
    s, b, h, a, t = _sbhat(name)
    assert activation_bytes_per_layer(table3_workload(name, sp=True, recompute="selective")) == pytest.approx(
        34 * s * b * h / t, rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_full_recompute(name):
    s, b, h, a, t = _sbhat(name)
    assert activation_bytes_per_layer(table3_workload(name, recompute="full")) == pytest.approx(
        2 * s * b * h, rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_flash_attention_removes_the_score_term(name):
    s, b, h, a, t = _sbhat(name)
    wl = table3_workload(name)
    from dataclasses import replace
    flash = replace(wl, memory=replace(wl.memory, flash_attention=True))
    assert activation_bytes_per_layer(flash) == pytest.approx(s * b * h * (10 + 24 / t), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_eq6_first_stage_total_with_sp_and_selective(name):
    """Eq. 6 plus §4.3's extra terms: 34·sbhL/t + sbhp/t (+ 4sbh/t when p = 1, logits reported apart)."""
    s, b, h, a, t = _sbhat(name)
    heads, hidden, layers, tp, pp, gbatch, micro = TABLE3[name]
    wl = table3_workload(name, sp=True, recompute="selective")
    expected = 34 * s * b * h * layers / t + s * b * h * pp / t + (4 * s * b * h / t if pp == 1 else 0)
    assert activations_bytes(wl) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_eq7_model_flops_exact(name):
    """Eq. 7: 72·B·L·s·h²·(1 + s/(6h) + v/(12hL)) FLOPs per iteration, from the op graph."""
    heads, h, L, tp, pp, B, micro = TABLE3[name]
    s, v = 2048, 51200
    result = simhw.estimate(table3_workload(name), simhw.load_hw("a100"))
    assert result.model_flops == pytest.approx(72 * B * L * s * h * h * (1 + s / (6 * h) + v / (12 * h * L)), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_full_recompute_hardware_flops_are_four_forward_passes_of_the_layers(name):
    heads, h, L, tp, pp, B, micro = TABLE3[name]
    s = 2048
    result = simhw.estimate(table3_workload(name, recompute="full"), simhw.load_hw("a100"))
    layers_fwd = 24 * B * L * s * h * h * (1 + s / (6 * h))
    assert result.hardware_flops - result.model_flops == pytest.approx(layers_fwd, rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_selective_recompute_adds_the_attention_core_forward(name):
    """Selective recompute re-runs QK^T and attention over V: 4·B·s²·h·L extra FLOPs. (Eq. 8 of the
    paper charges 12·B·s²·h·L, i.e. 72BLsh²·s/(6h); simhw counts the forward it actually re-runs.)"""
    heads, h, L, tp, pp, B, micro = TABLE3[name]
    s = 2048
    result = simhw.estimate(table3_workload(name, recompute="selective"), simhw.load_hw("a100"))
    assert result.hardware_flops - result.model_flops == pytest.approx(4 * B * s * s * h * L, rel=1e-12)


@pytest.mark.parametrize("name,saving", [("gpt3-175b", 0.70), ("mt-nlg-530b", 0.65)])
def test_selective_recompute_saving(name, saving):
    """§5: selective recompute saves 80/114 = 70% (GPT-3) and 64/98 = 65% (MT-NLG) of activations."""
    base = activation_bytes_per_layer(table3_workload(name, sp=True))
    sel = activation_bytes_per_layer(table3_workload(name, sp=True, recompute="selective"))
    assert 1 - sel / base == pytest.approx(saving, abs=0.005)
