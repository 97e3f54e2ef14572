"""The analytical pipeline step (cost/estimate.py pipeline_time_s) with unequal stages agrees with
the event-driven schedule (sim/pipeline.py): the slowest stage sets the steady state, the others
the fill and drain."""
from __future__ import annotations

import numpy as np
import pytest

import simhw
from simhw.cost.pipeline import pipeline_time_s, steady_interval_s
from simhw.sim.pipeline import simulate_pipeline
from simhw.workload.from_yaml import workload_from_dict


@pytest.mark.parametrize("p, m, extra_s", [(4, 8, 0.5), (8, 16, 0.3), (8, 64, 0.2)])
def test_heavier_last_stage_matches_the_simulated_1f1b(p, m, extra_s):
    forward, backward = np.ones(p), 2.0 * np.ones(p)
    forward[-1] += extra_s / 3          # e.g. the output layer and loss on the last stage
    backward[-1] += 2 * extra_s / 3
    stage = forward + backward
    wl = workload_from_dict({"model": "llama2-7b", "mode": "train", "seq_len": 512, "global_batch": m,
                             "micro_batch": 1, "devices": p, "parallelism": {"pp": p}})
    others = (stage.sum() - stage.max()) / (p - 1)
    analytic = pipeline_time_s(float(stage.max()), m, wl, float(others))
    simulated = simulate_pipeline("1f1b", p, m, forward_s=forward, backward_s=backward).step_time_s
    assert analytic == pytest.approx(simulated, rel=1e-9)
    # pricing every fill slot at the slowest stage overstates the step
    assert pipeline_time_s(float(stage.max()), m, wl) > simulated


def test_estimate_fills_at_the_other_stages_mean():
    """GPT-3 175B on 8 stages: the last stage also runs the output layer, so the bubble is less than
    (p - 1) / v slowest-stage slots."""
    wl = workload_from_dict({"model": "gpt3-175b", "mode": "train", "seq_len": 2048, "global_batch": 64,
                             "micro_batch": 1, "devices": 64,
                             "parallelism": {"tp": 8, "pp": 8, "sp": True, "interleave": 3},
                             "memory": {"recompute": "selective", "flash_attention": False}})
    est = simhw.estimate(wl, simhw.load_hw("dgx-a100"))
    slowest_slot = (est.step_time_s - est.time_breakdown_s["pipeline_bubble"]
                    - est.time_breakdown_s["optimizer"] - est.time_breakdown_s["data_parallel"]) / 64
    assert 0 < est.time_breakdown_s["pipeline_bubble"] < 7 / 3 * slowest_slot


PASSES = [(1.0, 1.0, 1.0), (1.0, 1.3, 0.7), (1.0, 1.5, 1.0), (1.2, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 1.0, 0.5),
          (2.0, 1.0, 1.0), (1.0, 2.0, 3.0)]


@pytest.mark.parametrize("f, b, w", PASSES)
@pytest.mark.parametrize("kind", ["v-min", "v-half", "zb-h1"])
def test_steady_interval_is_the_simulated_schedules(kind, f, b, w):
    """steady_interval_s against the event-driven schedule's time per extra micro-batch (4 stages,
    32 -> 64 micro-batches; a V shape's device runs two chunks of f / 2, b / 2, w / 2)."""
    from simhw.workload.spec import PipeSchedule

    def step(m):
        return simulate_pipeline(kind, 4, m, forward_s=f, backward_s=b, weight_grad_s=w).step_time_s
    simulated = (step(64) - step(32)) / 32
    assert steady_interval_s(PipeSchedule(kind), f, b, w) == pytest.approx(simulated, rel=1e-9)


@pytest.mark.parametrize("f, b, w", PASSES)
@pytest.mark.parametrize("p, m", [(4, 16), (8, 32)])
def test_zb_h1_fill_is_the_simulated_schedules(p, m, f, b, w):
    """ZB-H1's bubble, (p - 1) max(f + b - w, f, b): a third of 1F1B's with equal passes."""
    wl = workload_from_dict({"model": "llama2-7b", "mode": "train", "seq_len": 512, "global_batch": m,
                             "micro_batch": 1, "devices": p, "parallelism": {"pp": p, "schedule": "zb-h1"}})
    stage = f + b + w
    analytic = pipeline_time_s(stage, m, wl, passes=[(f, b, w)] * p)
    simulated = simulate_pipeline("zb-h1", p, m, forward_s=f, backward_s=b, weight_grad_s=w).step_time_s
    assert analytic == pytest.approx(simulated, rel=1e-9)
