"""A board held at its power limit lowers its clock until its draw fits (cost/estimate.py).

The GPU specs' compute_fraction is the tensor pipes' efficiency at full clock (0.95 on A100 and
H100, as aiconfigurator's unthrottled GEMMs show); their energy per FLOP is derived so that a
random-data GEMM held at TDP runs at the sustained MAMF fraction (A100 0.869, H100 0.803)."""
import pytest

import simhw
from simhw.cost.power import dvfs_scale
from simhw.workload.from_yaml import workload_from_dict

TRAIN = {"model": "llama2-7b", "mode": "train", "dtype": "bf16", "seq_len": 4096, "micro_batch": 1,
         "global_batch": 1, "devices": 1}
DECODE = {"model": "llama2-7b", "mode": "decode", "dtype": "bf16", "seq_len": 1025, "micro_batch": 1,
          "global_batch": 1, "decode": {"context_len": 1024, "new_tokens": 1}, "engine": "none"}


def _capped(tmp_path, watts):
    (tmp_path / "capped.yaml").write_text(f"name: h100-capped\nversion: 1\nkind: gpu\nextends: h100\n"
                                          f"source: H100 at a {watts} W power cap\npower: {{tdp: {watts} W}}\n")
    return simhw.load_hw(str(tmp_path / "capped.yaml"))


# A100: MAMF (stas00/ml-engineering); H100: simhw's own 20-100 ms bursts of an 8192^3 bf16 GEMM after
# idle at the 700 W limit, 0.79 of 989.4 TFLOP/s (validate/data/h100-2026-11-26/power_bursts.csv)
# (H100: 0.79 with byte energy and the 8192^3 GEMM's own full-clock rate, tests/unit/test_power_states.py)
@pytest.mark.parametrize("name, mamf", [("a100", 0.869), ("h100", 0.826)])
def test_a_gemm_on_random_data_settles_at_the_mamf_fraction_of_a_cool_die(name, mamf):
    """The derivation in the specs: a GEMM at the full-clock compute fraction would draw more than
    TDP; the DVFS clock that holds it at TDP, the die near idle temperature, gives the MAMF (burst)
    fraction."""
    from simhw.spec.model import DType

    hw = simhw.load_hw(name)
    rate = hw.efficiency.compute_fraction * hw.peak(DType.BF16)          # FLOP/s at full clock
    clock = dvfs_scale(hw.flop_energy(DType.BF16) * rate + hw.active_w, 1.0, hw.tdp_w - hw.idle_w)
    assert clock < 1.0
    assert clock * hw.efficiency.compute_fraction == pytest.approx(mamf, abs=0.005)


def test_a_large_gemm_is_held_at_tdp_and_a_training_step_stays_under_it():
    """OpCoster prices each compute op at the clock its own draw allows (power_limited): a large
    GEMM draws exactly TDP, and a training step, with its memory-bound ops at full clock, less."""
    from simhw.cost.estimate import OpCoster
    from simhw.spec.model import DType
    from simhw.workload.graph import Op, OpKind, Phase, shape

    hw = simhw.load_hw("h100")
    m, n, k = 8192, 65536, 16384           # a large shape
    gemm = Op("gemm", OpKind.GEMM, Phase.FWD, 0, 2.0 * m * n * k, DType.BF16, weight_bytes=2 * k * n,
              input_bytes=2 * m * k, output_bytes=2 * m * n, shape=shape(m=m, n=n, k=k))
    cost = OpCoster(hw)(gemm)
    body = cost.time_s - hw.efficiency.launch_s
    assert cost.power_limit_s > 0.0
    assert hw.idle_w + hw.active_w + cost.energy_j / body == pytest.approx(700.0, rel=1e-9)
    assert 2.0 * m * n * k / body / hw.peak(DType.BF16) == pytest.approx(0.677, abs=0.025)   # measured, 6 s
    r = simhw.estimate(workload_from_dict(TRAIN), hw)
    assert r.time_breakdown_s["power_limit"] > 0.0 and 0.7 < r.clock_scale < 1.0
    assert r.avg_power_w <= 700.0
    assert sum(r.time_breakdown_s.values()) == pytest.approx(r.step_time_s, rel=1e-9)


def test_a_power_cap_slows_compute_bound_work_and_holds_the_draw(tmp_path):
    full, capped = simhw.load_hw("h100"), _capped(tmp_path, 400)
    wl = workload_from_dict(TRAIN)
    a, b = simhw.estimate(wl, full), simhw.estimate(wl, capped)
    assert b.step_time_s > 1.1 * a.step_time_s and b.clock_scale < a.clock_scale
    assert b.avg_power_w <= 400.0 + 1e-6 < a.avg_power_w
    assert b.time_breakdown_s["power_limit"] > a.time_breakdown_s["power_limit"]
    assert sum(b.time_breakdown_s.values()) == pytest.approx(b.step_time_s, rel=1e-9)
    assert b.energy_j < a.energy_j                                      # lower voltage: less energy


def test_memory_bound_decode_fits_under_a_moderate_cap(tmp_path):
    wl = workload_from_dict(DECODE)
    a, b = simhw.estimate(wl, simhw.load_hw("h100")), simhw.estimate(wl, _capped(tmp_path, 550))
    assert a.avg_power_w < 500.0
    assert b.step_time_s == pytest.approx(a.step_time_s, rel=0.01)


def test_dvfs_scale_is_the_cube_root_of_the_power_ratio():
    assert dvfs_scale(100.0, 1.0, 200.0) == 1.0                       # fits: full clock
    assert dvfs_scale(200.0, 1.0, 100.0) == pytest.approx(0.5 ** (1 / 3))
    assert dvfs_scale(800.0, 2.0, 50.0) == pytest.approx((50 * 2 / 800) ** (1 / 3))
    assert dvfs_scale(0.0, 1.0, 10.0) == dvfs_scale(5.0, 0.0, 10.0) == 1.0


def test_a_cap_costs_less_time_than_a_linear_stretch(tmp_path):
    """Lowering voltage with the clock makes a 25% cut in board power cost well under 25% in speed
    (a linear model, energy per operation fixed, would stretch by the whole power ratio)."""
    full, capped = simhw.load_hw("h100"), _capped(tmp_path, 525)
    wl = workload_from_dict(TRAIN)
    a, b = simhw.estimate(wl, full), simhw.estimate(wl, capped)
    assert 1.0 < b.step_time_s / a.step_time_s < (700.0 - full.idle_w) / (525.0 - capped.idle_w)


def test_simulate_runs_a_capped_board_at_the_dvfs_clock(tmp_path):
    """simhw simulate prices the same power limit as estimate: the step is simulated again at the
    clock at which its draw fits, and the two commands agree on the capped step."""
    from simhw.sim.run import simulate_step

    wl = workload_from_dict({**TRAIN, "model": "gemma-2b", "seq_len": 2048})   # fits one H100 with Adam
    full, capped = simhw.load_hw("h100"), _capped(tmp_path, 400)
    s_full, s_cap = simulate_step(wl, full), simulate_step(wl, capped)
    e_full, e_cap = simhw.estimate(wl, full), simhw.estimate(wl, capped)
    assert 0.5 < s_cap.clock_scale < s_full.clock_scale < 1.0
    assert s_cap.clock_scale == pytest.approx(e_cap.clock_scale, rel=0.03)
    assert s_full.clock_scale == pytest.approx(e_full.clock_scale, rel=0.03)
    assert s_cap.step_time_s / s_full.step_time_s == pytest.approx(e_cap.step_time_s / e_full.step_time_s, rel=0.03)
    assert s_cap.to_dict()["clock_scale"] == s_cap.clock_scale


@pytest.mark.parametrize("framework", ["fused", "eager", "compiled"])
def test_a_step_of_many_micro_batches_draws_at_most_tdp(framework):
    """The step clock follows the step's real mix: the micro-batch graph once per micro-batch and
    the (memory-bound, low-power) optimizer once. Counted once each, the optimizer diluted the mix
    and a 128-micro-batch step drew 738-780 W on a 700 W H200."""
    wl = workload_from_dict({**TRAIN, "micro_batch": 2, "global_batch": 256, "framework": framework})
    r = simhw.estimate(wl, simhw.load_hw("h200"))
    assert wl.microbatches == 128 and r.clock_scale < 1.0
    assert r.avg_power_w == pytest.approx(700.0, rel=0.01)
