"""A board held at its power limit lowers its clock until its average draw fits (cost/estimate.py)."""
import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict

TRAIN = {"model": "llama2-7b", "mode": "train", "dtype": "bf16", "seq_len": 4096, "micro_batch": 1,
         "global_batch": 1, "devices": 1}
DECODE = {"model": "llama2-7b", "mode": "decode", "dtype": "bf16", "seq_len": 1025, "micro_batch": 1,
          "global_batch": 1, "decode": {"context_len": 1024, "new_tokens": 1}, "engine": "none"}


def _capped(tmp_path, watts):
    (tmp_path / "capped.yaml").write_text(f"name: h100-capped\nversion: 1\nkind: gpu\nextends: h100\n"
                                          f"source: H100 at a {watts} W power cap\npower: {{tdp: {watts} W}}\n")
    return simhw.load_hw(str(tmp_path / "capped.yaml"))


def test_the_shipped_spec_does_not_throttle():
    r = simhw.estimate(workload_from_dict(TRAIN), simhw.load_hw("h100"))
    assert r.time_breakdown_s["power_limit"] == 0.0
    assert r.avg_power_w <= 700.0


def test_a_power_cap_slows_compute_bound_work_and_holds_the_draw(tmp_path):
    full, capped = simhw.load_hw("h100"), _capped(tmp_path, 400)
    wl = workload_from_dict(TRAIN)
    a, b = simhw.estimate(wl, full), simhw.estimate(wl, capped)
    assert b.step_time_s > 1.2 * a.step_time_s
    assert b.avg_power_w == pytest.approx(400.0, rel=1e-6)
    assert b.time_breakdown_s["power_limit"] == pytest.approx(b.step_time_s - a.step_time_s, rel=1e-9)
    assert sum(b.time_breakdown_s.values()) == pytest.approx(b.step_time_s, rel=1e-9)
    # DVFS: the clock drops by s = t_full / t_capped and the voltage with it, so the same work costs
    # s^2 of its dynamic energy, and so does the active draw (clock tree); idle runs longer
    clock = a.step_time_s / b.step_time_s
    assert b.clock_scale == pytest.approx(clock, rel=1e-9)
    dyn_a = a.energy_j - a.step_time_s * full.busy_w
    active_a = full.active_w * a.step_time_s
    assert b.energy_j == pytest.approx((dyn_a + active_a) * clock ** 2 + capped.idle_w * b.step_time_s, rel=1e-6)
    # the draw held at the cap follows P ~ s^3 from the uncapped draw above idle
    assert (dyn_a / a.step_time_s + full.active_w) * clock ** 3 == pytest.approx(400.0 - capped.idle_w, rel=1e-6)


def test_memory_bound_decode_fits_under_a_moderate_cap(tmp_path):
    wl = workload_from_dict(DECODE)
    a, b = simhw.estimate(wl, simhw.load_hw("h100")), simhw.estimate(wl, _capped(tmp_path, 500))
    assert a.avg_power_w < 500.0
    assert b.step_time_s == a.step_time_s


def test_dvfs_scale_is_the_cube_root_of_the_power_ratio():
    from simhw.cost.estimate import dvfs_scale

    assert dvfs_scale(100.0, 1.0, 200.0) == 1.0                       # fits: full clock
    assert dvfs_scale(200.0, 1.0, 100.0) == pytest.approx(0.5 ** (1 / 3))
    assert dvfs_scale(800.0, 2.0, 50.0) == pytest.approx((50 * 2 / 800) ** (1 / 3))
    assert dvfs_scale(0.0, 1.0, 10.0) == dvfs_scale(5.0, 0.0, 10.0) == 1.0


def test_a_cap_costs_less_time_than_a_linear_stretch(tmp_path):
    """Lowering voltage with the clock makes a 25% cut in board power cost well under 25% in speed
    (a linear model, energy per operation fixed, would stretch by the whole dynamic ratio)."""
    full, capped = simhw.load_hw("h100"), _capped(tmp_path, 525)
    wl = workload_from_dict(TRAIN)
    a, b = simhw.estimate(wl, full), simhw.estimate(wl, capped)
    if a.avg_power_w <= 525.0:
        pytest.skip("this workload does not reach the cap")
    dyn_a = (a.energy_j - a.step_time_s * full.busy_w) / a.step_time_s
    linear = (dyn_a + full.active_w) / (525.0 - capped.idle_w)
    assert 1.0 < b.step_time_s / a.step_time_s < linear


def test_simulate_runs_a_capped_board_at_the_dvfs_clock(tmp_path):
    """simhw simulate prices the same power limit as estimate: the step is simulated again at the
    clock at which its draw fits, and the two commands agree on the capped step."""
    from simhw.sim.run import simulate_step

    wl = workload_from_dict({**TRAIN, "model": "gemma-2b", "seq_len": 2048})   # fits one H100 with Adam
    full, capped = simhw.load_hw("h100"), _capped(tmp_path, 400)
    s_full, s_cap = simulate_step(wl, full), simulate_step(wl, capped)
    e_full, e_cap = simhw.estimate(wl, full), simhw.estimate(wl, capped)
    assert s_full.clock_scale == 1.0 and 0.5 < s_cap.clock_scale < 1.0
    assert s_cap.step_time_s == pytest.approx(s_full.step_time_s / s_cap.clock_scale, rel=0.02)
    assert s_cap.step_time_s / s_full.step_time_s == pytest.approx(e_cap.step_time_s / e_full.step_time_s, rel=0.03)
    assert e_cap.clock_scale == pytest.approx(e_full.step_time_s / e_cap.step_time_s, rel=1e-9)
    assert s_cap.to_dict()["clock_scale"] == s_cap.clock_scale
