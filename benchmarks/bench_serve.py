"""Speed of `simhw serve`: requests simulated per second, with the cost model's iteration grid cold
(the first run fills it with `estimate` calls) and warm.

Run: python benchmarks/bench_serve.py [--requests 2000]
Not a test: it prints, asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import simhw
    from simhw.sim.requests import poisson_requests
    from simhw.sim.serving import ServingOptions, simulate_serving

    hw = simhw.load_hw("dgx-a100")
    wl = simhw.load_workload(str(ROOT / "workloads" / "llama2-70b-decode.yaml"))
    from dataclasses import replace
    wl = replace(wl, devices=16)                 # four replicas of TP 4
    reqs = poisson_requests(args.requests, 8.0, 1024, 256, seed=0)
    for label, opts in (("shared replicas", ServingOptions()), ("1 prefill + 3 decode", ServingOptions(prefill_replicas=1))):
        t0 = time.perf_counter()
        res = simulate_serving(wl, hw, reqs, opts)
        cold = time.perf_counter() - t0
        print(f"{label}: {args.requests} requests, {res.summary()['output_tokens_per_s']:.0f} tok/s simulated; "
              f"{cold:.2f} s wall ({args.requests / cold:.0f} requests/s, cost-model grid filled on the way)")


if __name__ == "__main__":
    main()
