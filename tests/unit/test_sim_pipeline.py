"""Unit tests of pipeline schedules as task graphs (simhw.sim.pipeline)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from simhw.sim.pipeline import (PipelineKind, global_stage, pipeline_orders, simulate_pipeline)

KINDS = [k.value for k in PipelineKind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p, m", [(2, 4), (4, 4), (4, 8), (3, 9)])
def test_every_pass_appears_once_per_device(kind, p, m):
    orders = pipeline_orders(kind, p, m, chunks=3)
    split = kind in ("zb-h1", "v-half", "v-min")
    v = {"interleaved": 3, "v-half": 2, "v-min": 2}.get(kind, 1)
    for order in orders:
        counts = Counter((x.kind, x.chunk, x.microbatch) for x in order)
        assert set(counts.values()) == {1}
        assert len(order) == m * v * (3 if split else 2)


@pytest.mark.parametrize("kind", KINDS)
def test_runs_respect_data_dependencies_and_memory_balances(kind):
    p, m = 4, 8
    r = simulate_pipeline(kind, p, m, 1.0, 2.0, 0.5, send_recv_s=0.1, chunks=2)
    s = r.schedule
    key = {}
    for t, info in enumerate(r.task_pass):
        if info is not None:
            d, x = info
            key[(x.kind, global_stage(r.kind, p, d, x.chunk), x.microbatch)] = t
    last = p * r.chunks - 1
    for (kind_, g, mb), t in key.items():
        if kind_ == "F" and g > 0:
            assert s.start_s[t] >= s.end_s[key[("F", g - 1, mb)]]
        if kind_ == "B" and g < last:
            assert s.start_s[t] >= s.end_s[key[("B", g + 1, mb)]]
    for bytes_ in s.memory_bytes:
        assert bytes_[-1] == 0.0
    assert 0.0 < r.bubble_rate < 1.0
    assert r.step_time_s >= r.longest_stage_time_s


def test_gpipe_holds_all_microbatches():
    r = simulate_pipeline("gpipe", 4, 8, 1.0, 1.0, 1.0)
    assert r.peak_activation_microbatches.tolist() == [8.0] * 4
    assert r.bubble_rate == pytest.approx(3 / 11)


def test_interleaved_bubble_shrinks_by_chunks():
    """Narayanan et al., SC'21 (arXiv 2104.04473) §2.2.2: interleaving with v chunks divides the
    bubble time (p-1)(t_f+t_b) by v."""
    p, m = 4, 8
    for v in (2, 4):
        r = simulate_pipeline("interleaved", p, m, 1.0, 2.0, 0.0, chunks=v)
        assert r.step_time_s == pytest.approx(3.0 * m + 3.0 * (p - 1) / v)
    with pytest.raises(ValueError, match="multiple of stages"):
        pipeline_orders("interleaved", 4, 6)


def test_send_recv_time_lengthens_the_step():
    # p = 2, m = 1: F (1 s), send, F, B+W (2 s), send, B+W
    r = simulate_pipeline("1f1b", 2, 1, 1.0, 1.0, 1.0, send_recv_s=0.5)
    assert r.step_time_s == pytest.approx(1 + 0.5 + 1 + 2 + 0.5 + 2)
    assert r.graph.n_resources == 4  # 2 devices + one link each way
    base = simulate_pipeline("1f1b", 4, 8, 1.0, 1.0, 1.0)
    slow = simulate_pipeline("1f1b", 4, 8, 1.0, 1.0, 1.0, send_recv_s=0.5)
    # fill and drain cross 3 links each way; the steady state waits for sends too
    assert slow.step_time_s >= base.step_time_s + 6 * 0.5


def test_unsplit_backward_includes_weight_grad():
    r = simulate_pipeline("1f1b", 2, 2, 1.0, 1.0, 3.0)
    durations = {x.kind for _, x in r.task_pass if x is not None}
    assert durations == {"F", "B"}
    assert r.step_time_s == pytest.approx((2 + 2 - 1) * 5.0)


def test_per_stage_durations_and_slowest_stage_dominates():
    fast = simulate_pipeline("1f1b", 4, 16, 1.0, 1.0, 1.0)
    slow = simulate_pipeline("1f1b", 4, 16, [1.0, 1.0, 2.0, 1.0], 1.0, 1.0)
    assert slow.step_time_s > fast.step_time_s
    assert slow.step_time_s >= 16 * 4.0  # the slow stage's own work
    with pytest.raises(ValueError, match="forward_s"):
        simulate_pipeline("1f1b", 4, 4, [1.0, 1.0], 1.0, 1.0)


def test_bad_arguments():
    with pytest.raises(ValueError):
        pipeline_orders("pipedream", 4, 4)
    with pytest.raises(ValueError, match="at least 1"):
        pipeline_orders("1f1b", 0, 4)
    with pytest.raises(ValueError, match="2 stages"):
        pipeline_orders("v-half", 1, 4)


def test_numba_backend_gives_the_same_pipeline():
    a = simulate_pipeline("v-half", 4, 8, 1.0, 1.5, 0.5, send_recv_s=0.05, backend="python")
    b = simulate_pipeline("v-half", 4, 8, 1.0, 1.5, 0.5, send_recv_s=0.05, backend="numba")
    np.testing.assert_array_equal(a.schedule.start_s, b.schedule.start_s)
    np.testing.assert_array_equal(a.peak_activation_microbatches, b.peak_activation_microbatches)
