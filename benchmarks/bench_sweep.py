"""Speed of `simhw sweep`: estimates per second over a grid of workload and spec values (each
combination loads its workload and spec and runs one estimate).

Run: python benchmarks/bench_sweep.py
Not a test: it prints, asserts nothing.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from simhw.cost.sweep import parse_vary, sweep

    grids = {
        "Llama-2-70B decode, tp x batch x HBM bandwidth": (
            "llama2-70b-decode.yaml", ["devices=8"],
            ["parallelism.tp=2,4,8", "micro_batch=8,16,32,64", "hw.memory.hbm.bandwidth=3.35TB/s,5TB/s,8TB/s"]),
        "Llama-2-7B training, recompute x L2 x link": (
            "llama2-7b-train.yaml", ["devices=8", "parallelism.tp=8"],
            ["memory.recompute=none,selective,full", "hw.memory.l2.capacity=50MB,100MB",
             "hw.links.intra.bandwidth=450GB/s,900GB/s"]),
    }
    for label, (wl, sets, vary) in grids.items():
        t0 = time.perf_counter()
        rows = sweep(str(ROOT / "workloads" / wl), ["dgx-h100"], parse_vary(vary), sets)
        wall = time.perf_counter() - t0
        print(f"{label}: {len(rows)} combinations in {wall:.2f} s ({len(rows) / wall:.1f} estimates/s)")


if __name__ == "__main__":
    main()
