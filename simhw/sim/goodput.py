"""Goodput: the highest request rate a serving deployment sustains while most requests meet their
latency targets (DistServe, Zhong et al. 2024, arXiv 2401.09670 §2: the maximum rate at which at
least 90% of requests meet both the time-to-first-token and the time-per-output-token SLO).

Found by bisection on the Poisson rate, each candidate simulated by sim/serving.py on the same
seeded arrival pattern (scaled in time), so the search is monotone in practice.
"""
from __future__ import annotations

from dataclasses import dataclass

from .requests import poisson_requests
from .serving import ServingOptions, ServingResult, simulate_serving


@dataclass(frozen=True)
class Goodput:
    rate_per_s: float                 # highest rate found that meets the attainment (0: none does)
    attainment: float                 # share of requests meeting both SLOs at that rate
    result: ServingResult | None      # the simulation at that rate
    saturation_rate_per_s: float      # requests per second of an offline batch: the deployment's ceiling
    devices: int

    @property
    def per_device(self) -> float:
        return self.rate_per_s / self.devices if self.devices else 0.0


def attainment(res: ServingResult, ttft_slo_s: float, tpot_slo_s: float) -> float:
    """Share of ``res``'s requests whose TTFT and TPOT both meet their targets."""
    ok = sum(r.ttft_s <= ttft_slo_s and r.tpot_s <= tpot_slo_s for r in res.requests)
    return ok / len(res.requests)


def max_goodput(wl, hw, prompt_tokens: int, output_tokens: int, ttft_slo_s: float, tpot_slo_s: float,
                options: ServingOptions = ServingOptions(), requests: int = 200, target: float = 0.9,
                seed: int = 0, steps: int = 12, cached_tokens: int = 0, range_ratio: float = 0.0) -> Goodput:
    """The highest Poisson rate at which ``target`` of ``requests`` requests meet both SLOs."""
    def run(rate: float) -> ServingResult:
        return simulate_serving(wl, hw, poisson_requests(requests, rate, prompt_tokens, output_tokens, seed,
                                                                cached_tokens, range_ratio), options)

    batch = run(0.0)
    ceiling = len(batch.requests) / batch.makespan_s if batch.makespan_s > 0 else 0.0
    lo, hi, best = 0.0, 1.5 * ceiling, None
    for _ in range(steps):
        mid = (lo + hi) / 2
        if mid <= 0:
            break
        res = run(mid)
        share = attainment(res, ttft_slo_s, tpot_slo_s)
        if share >= target:
            lo, best = mid, (mid, share, res)
        else:
            hi = mid
    rate, share, res = best if best else (0.0, 0.0, None)
    return Goodput(rate, share, res, ceiling, wl.devices)
