"""Pipeline partition MILP against brute force over contiguous splits; schedule formulas."""
import itertools
import re
import random

import pytest

pytest.importorskip("highspy")
pytest.importorskip("pyomo")

from simhw.errors import InfeasibleError  # noqa: E402
from simhw.schedule import pipeline_partition as pp  # noqa: E402
from simhw.schedule.pipeline_partition import PipelineData, PipelineLayer, PipelineSchedule as S  # noqa: E402

GB = 1e9


def model(seed, n_mid=6, p=2, cap=40 * GB, ms=(2, 4, 8)):
    rng = random.Random(seed)
    mid = tuple(PipelineLayer(f"l{i}", rng.uniform(0.8, 1.2) * 1e-2, rng.uniform(2, 4) * GB,
                              rng.uniform(0.02, 0.06) * GB, 1e-3) for i in range(n_mid))
    emb = PipelineLayer("embedding", 0.3e-2, 3 * GB, 0.005 * GB, 1e-3)
    out = PipelineLayer("output", 3e-2, 3 * GB, 0.1 * GB, 1e-3)  # the vocabulary layer costs more
    return PipelineData((emb,) + mid + (out,), num_stages=p, global_batch_samples=16,
                        device_capacity_bytes=cap, micro_batch_counts=ms)


def brute_force(data, schedule, m):
    """Least max device time over every split into p·v non-empty contiguous stages within memory."""
    n, p = len(data.layers), data.num_stages
    k = p * pp.chunks(schedule, data.interleave_chunks)
    best = None
    for cuts in itertools.combinations(range(1, n), k - 1):
        times, mem = pp.evaluate_partition(data, schedule, m, (0,) + cuts + (n,))
        if all(mem[d] <= data.capacity(d) * (1 + 1e-9) for d in range(p)):
            best = max(times) if best is None else min(best, max(times))
    return best


def test_bubble_formulas():
    assert pp.bubble_fraction(S.ONE_F_ONE_B, 4, 8) == pytest.approx(3 / 11)
    assert pp.bubble_fraction(S.INTERLEAVED, 4, 8, 2) == pytest.approx(3 / 19)
    assert pp.bubble_fraction(S.V_HALF, 4, 8) == pytest.approx(3 / 22)
    assert pp.bubble_fraction(S.V_MIN, 4, 8) == pytest.approx(2 / 11)


def test_inflight_micro_batches():
    p, m = 8, 64
    assert [pp.inflight_micro_batches(S.ONE_F_ONE_B, p, d, m) for d in range(p)] == list(range(8, 0, -1))
    # Korthikanti et al. §4.2.3: first stage of interleaved holds p·(1 + (p − 1)/(p·v)) micro-batches
    assert pp.inflight_micro_batches(S.INTERLEAVED, p, 0, m, 2) == pytest.approx(p * (1 + (p - 1) / (p * 2)))
    assert pp.inflight_micro_batches(S.V_HALF, p, 3, m) == 5
    assert pp.inflight_micro_batches(S.V_MIN, p, 3, m) == 4
    assert pp.inflight_micro_batches(S.ONE_F_ONE_B, p, 0, 3) == 3  # capped by m


def test_v_shape_device_assignment():
    assert [pp.device_of_stage(S.V_HALF, 3, k) for k in range(6)] == [0, 1, 2, 2, 1, 0]
    assert [pp.device_of_stage(S.INTERLEAVED, 3, k) for k in range(6)] == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("schedule", list(S))
@pytest.mark.parametrize("seed", range(3))
def test_partition_matches_brute_force(schedule, seed):
    data = model(seed, cap=(15.5, 14.5, 17.0)[seed] * GB)  # mixes infeasible, tight and loose caps
    for m in (2, 4):
        best = brute_force(data, schedule, m)
        if best is None:
            with pytest.raises(InfeasibleError, match="per-device memory"):
                pp.solve_fixed(data, schedule, m)
            continue
        r = pp.solve_fixed(data, schedule, m)
        assert max(r.device_time_s) == pytest.approx(best, rel=1e-7)
        assert all(mem <= data.capacity(0) * (1 + 1e-9) for mem in r.device_memory_bytes)
        layers = [i for stage in r.stage_layers for i in stage]
        assert layers == list(range(len(data.layers)))  # contiguous, every layer once, in order


def test_solve_picks_least_step_time_over_candidates():
    data = model(7, n_mid=8, p=2, cap=17 * GB, ms=(2, 4, 8, 16))  # m = 2 does not fit
    r = pp.solve(data)
    expected = []
    for schedule in S:
        v = pp.chunks(schedule)
        for m in data.micro_batch_counts:
            if schedule is S.INTERLEAVED and m % data.num_stages:
                continue
            best = brute_force(data, schedule, m)
            if best is not None:
                expected.append(m * best / (1 - pp.bubble_fraction(schedule, 2, m, v)))
    assert r.step_time_s == pytest.approx(min(expected), rel=1e-7)
    assert len(r.candidates) == 4 * 4
    assert r.step_time_s == pytest.approx(
        r.num_micro_batches * max(r.device_time_s) / (1 - r.bubble_fraction))


def test_stage_memory_depends_on_stage_index_for_1f1b():
    layer = PipelineLayer("l", 1e-2, 1 * GB, 1 * GB)
    data = PipelineData((layer,) * 8, num_stages=2, global_batch_samples=4, device_capacity_bytes=100 * GB,
                        micro_batch_counts=(4,))
    r = pp.solve_fixed(data, S.ONE_F_ONE_B, 4)
    # micro-batch = 1 sample: stage 0 holds 2 micro-batches, stage 1 holds 1
    assert r.device_memory_bytes == pytest.approx((4 * 1 * GB + 2 * 4 * GB, 4 * 1 * GB + 1 * 4 * GB))


def test_all_infeasible_reports_least_memory():
    data = model(1, cap=5 * GB)
    n, least = len(data.layers), float("inf")
    for schedule in S:
        k = 2 * pp.chunks(schedule)
        for m in data.micro_batch_counts:
            if schedule is S.INTERLEAVED and m % 2:
                continue
            for cuts in itertools.combinations(range(1, n), k - 1):
                least = min(least, max(pp.evaluate_partition(data, schedule, m, (0,) + cuts + (n,))[1]))
    pattern = "per-device memory is binding.*needs at least " + re.escape(f"{least:.4g}")
    with pytest.raises(InfeasibleError, match=pattern):
        pp.solve(data)


@pytest.mark.parametrize("schedule", list(S))
def test_identical_body_layers_match_brute_force(schedule):
    body = PipelineLayer("layer", 1e-2, 1.5 * GB, 0.05 * GB, 1e-3)
    emb = PipelineLayer("embedding", 0.2e-2, 3 * GB, 0.005 * GB, 1e-3)
    out = PipelineLayer("output", 2.5e-2, 3 * GB, 0.2 * GB, 1e-3)
    data = PipelineData((emb,) + (body,) * 11 + (out,), num_stages=2, global_batch_samples=16,
                        device_capacity_bytes=15.1 * GB, micro_batch_counts=(4,))
    best = brute_force(data, schedule, 4)  # least memory: 1F1B 14, interleaved 15, V 15.2 GB
    if best is None:
        with pytest.raises(InfeasibleError, match="needs at least 1.52e"):
            pp.solve_fixed(data, schedule, 4)
    else:
        assert max(pp.solve_fixed(data, schedule, 4).device_time_s) == pytest.approx(best, rel=1e-7)


def test_as_many_layers_as_stages():
    layers = tuple(PipelineLayer(f"l{i}", 1e-2 * (i + 1), 1 * GB, 0.1 * GB) for i in range(4))
    data = PipelineData(layers, num_stages=2, global_batch_samples=8, device_capacity_bytes=80 * GB,
                        micro_batch_counts=(2, 4))
    r = pp.solve_fixed(data, S.V_HALF, 4)
    assert r.stage_layers == ((0,), (1,), (2,), (3,))
    with pytest.raises(InfeasibleError):
        pp.solve_fixed(PipelineData(layers, 2, 8, 1 * GB, (4,)), S.V_HALF, 4)


def test_workload_partition_weighs_the_workloads_own_interleave():
    """`simhw schedule` on a workload that interleaves 3 chunks weighs the interleaved schedule at
    v = 3, whose smaller bubble makes it the pick here (at the default v = 2, V-Half was)."""
    from simhw.schedule.from_workload import pipeline_partition
    from simhw.workload.from_yaml import load_workload
    import simhw
    wl = load_workload("workloads/gpt3-175b-megatron.yaml", [])
    result = pipeline_partition(wl, simhw.load_hw("dgx-a100"))
    assert result.schedule is pp.PipelineSchedule.INTERLEAVED
    assert all(len(stages) == 3 for stages in result.device_stages)
