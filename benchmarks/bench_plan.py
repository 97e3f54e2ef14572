"""Speed of `simhw plan`: layouts searched and candidates costed per second (each candidate loads
its workload, checks memory, and the ones that fit run one estimate).

Run: python benchmarks/bench_plan.py
Not a test: it prints, asserts nothing.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from simhw.cost.plan import plan

    cases = {
        "Llama-2-7B training, 8 H100": ("llama2-7b-train.yaml", [], "dgx-h100"),
        "Llama3-70B training, 64 H100": ("llama2-7b-train.yaml", ["model=llama3-70b", "devices=64"], "dgx-h100"),
        "Qwen3-30B-A3B training, 8 H100 (expert parallelism)": ("llama2-7b-train.yaml", ["model=qwen3-30b-a3b"],
                                                                  "dgx-h100"),
        "Llama-2-70B decode, 8 H100": ("llama2-70b-decode.yaml", ["devices=8"], "dgx-h100"),
    }
    for label, (wl, sets, hw) in cases.items():
        t0 = time.perf_counter()
        result = plan(str(ROOT / "workloads" / wl), hw, sets)
        wall = time.perf_counter() - t0
        print(f"{label}: {result.layouts} layouts, {len(result.ranked)} costed in {wall:.2f} s "
              f"({result.layouts / wall:.0f} layouts/s)")


if __name__ == "__main__":
    main()
