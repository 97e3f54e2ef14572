"""Chen et al. checkpoint placement MILP against brute force over all checkpoint sets."""
import itertools
import math
import random

import pytest

pytest.importorskip("highspy")
pytest.importorskip("pyomo")

from simhw.errors import InfeasibleError  # noqa: E402
from simhw.schedule import checkpoint as ck  # noqa: E402
from simhw.schedule.solve import SolveStatus  # noqa: E402


def _subsets(n):
    for r in range(n + 1):
        yield from itertools.combinations(range(n), r)


def _instance(seed, n):
    rng = random.Random(seed)
    return (tuple(rng.choice([1.0, 2.0, 3.0, 5.0]) * 1e8 for _ in range(n)),
            tuple(rng.uniform(0.5, 2.0) * 1e-3 for _ in range(n)))


def test_evaluators():
    a = (1.0, 2.0, 3.0, 4.0, 5.0)
    assert ck.peak_memory_bytes(a, ()) == 15.0
    assert ck.peak_memory_bytes(a, range(5)) == 15.0
    assert ck.peak_memory_bytes(a, (2,)) == 3.0 + 9.0
    assert ck.recompute_time_s(a, (1, 3)) == 1.0 + 3.0 + 5.0
    assert ck.segments_of(5, (2,)) == ((0, 2), (3, 5))
    assert ck.segments_of(3, (0, 1, 2)) == ()


@pytest.mark.parametrize("seed", range(8))
def test_min_memory_matches_brute_force(seed):
    n = 4 + seed % 6
    a, f = _instance(seed, n)
    best = min(ck.peak_memory_bytes(a, c) for c in _subsets(n))
    r = ck.solve_min_memory(ck.ChainData(a, f))
    assert r.status is SolveStatus.OPTIMAL
    assert r.peak_memory_bytes == pytest.approx(best, rel=1e-9)
    assert r.recompute_time_s <= sum(f) + 1e-12  # at most one extra forward


@pytest.mark.parametrize("seed", range(8))
def test_min_recompute_under_budget_matches_brute_force(seed):
    n = 4 + seed % 6
    a, f = _instance(100 + seed, n)
    least = min(ck.peak_memory_bytes(a, c) for c in _subsets(n))
    budget = least + (sum(a) - least) * (seed % 4) / 4
    best = min(ck.recompute_time_s(f, c) for c in _subsets(n) if ck.peak_memory_bytes(a, c) <= budget)
    r = ck.solve(ck.ChainData(a, f, memory_budget_bytes=budget))
    assert r.recompute_time_s == pytest.approx(best, rel=1e-9, abs=1e-15)
    assert r.peak_memory_bytes <= budget * (1 + 1e-9)


@pytest.mark.parametrize("n", range(1, 13))
def test_uniform_closed_form_matches_brute_force(n):
    ones = (1.0,) * n
    assert ck.chen_uniform_min_memory(n) == min(ck.peak_memory_bytes(ones, c) for c in _subsets(n))


@pytest.mark.parametrize("n", [9, 16])
def test_milp_matches_uniform_closed_form(n):
    r = ck.solve_min_memory(ck.ChainData((1.0,) * n, (1.0,) * n))
    assert r.peak_memory_bytes == ck.chen_uniform_min_memory(n)
    assert r.peak_memory_bytes <= 2 * math.sqrt(n) + 1


def test_no_budget_keeps_everything():
    r = ck.solve(ck.ChainData((1.0, 2.0, 3.0), (1.0, 1.0, 1.0)))
    assert r.checkpoints == (0, 1, 2) and r.recompute_time_s == 0.0


def test_infeasible_budget_names_least_memory():
    a, f = (1e9,) * 16, (1e-3,) * 16
    with pytest.raises(InfeasibleError, match=r"device memory.*needs at least 7e\+09"):
        ck.solve(ck.ChainData(a, f, memory_budget_bytes=5e9))
