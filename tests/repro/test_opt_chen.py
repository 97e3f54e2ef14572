"""Chen et al., "Training Deep Nets with Sublinear Memory Cost" (arXiv 1604.06174), §4 and abstract.

Claim [A]: O(√n) memory with one extra forward pass. Algebra (seed-targets §8): n/k + k, least
at k = √n, i.e. about 2√n layer outputs. Tolerances: the integer optimum lies within
[2√n − 2, 2√n + 1] for every n (closed form) and the MILP reaches it exactly on small n.
"""
import math

import pytest

from simhw.schedule import checkpoint as ck


@pytest.mark.parametrize("n", [4, 10, 100, 1000, 10_000])
def test_min_memory_is_about_two_sqrt_n(n):
    m = ck.chen_uniform_min_memory(n)
    assert 2 * math.sqrt(n) - 2 <= m <= 2 * math.sqrt(n) + 1


def test_ratio_to_two_sqrt_n_tends_to_one():
    ratios = [ck.sqrt_law_ratio(n) for n in (100, 1000, 10_000, 100_000)]
    assert abs(ratios[-1] - 1) < 0.01
    assert all(abs(r - 1) <= 0.1 for r in ratios)


def test_thousand_layers_about_32_segments_of_32():
    """seed-targets §8 [D]: n = 1000 gives about 32 segments of about 32 layers."""
    n, k = 1000, 31  # 31 checkpoints, 32 segments of ≤ 31 recomputed layers
    assert k + math.ceil((n - k) / (k + 1)) == ck.chen_uniform_min_memory(n) == 62


def test_milp_reaches_the_sqrt_law_with_one_extra_forward():
    pytest.importorskip("highspy")
    n = 25
    r = ck.solve_min_memory(ck.ChainData((1.0,) * n, (1.0,) * n))
    assert r.peak_memory_bytes == ck.chen_uniform_min_memory(n) == 9  # 2·√25 − 1
    assert r.recompute_time_s <= n  # each layer recomputed at most once
    assert len(r.checkpoints) + max(e - s for s, e in r.segments) == 9  # k + n/k form
