"""A board held at its power limit stretches the step until its average draw fits (cost/estimate.py)."""
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
    # the same work, so the same dynamic energy; the static draw runs longer
    assert b.energy_j - b.step_time_s * capped.busy_w == pytest.approx(a.energy_j - a.step_time_s * full.busy_w)


def test_memory_bound_decode_fits_under_a_moderate_cap(tmp_path):
    wl = workload_from_dict(DECODE)
    a, b = simhw.estimate(wl, simhw.load_hw("h100")), simhw.estimate(wl, _capped(tmp_path, 500))
    assert a.avg_power_w < 500.0
    assert b.step_time_s == a.step_time_s
