"""Speed of `simhw estimate` for Llama-2-70B training: the Python API call and the CLI's wall time.

Run: python benchmarks/bench_estimate.py [--repeat 20]
Aims (issue 2): API <= 20 ms per call, CLI <= 0.5 s wall. Not a test: it prints, asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = {"name": "llama2-70b-train", "model": "llama2-70b", "mode": "train", "seq_len": 4096,
            "global_batch": 512, "micro_batch": 1, "devices": 64,
            "parallelism": {"tp": 8, "pp": 4, "sp": True}, "memory": {"recompute": "selective"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import simhw
    from simhw.workload.from_yaml import workload_from_dict

    hw = simhw.load_hw("a100")
    wl = workload_from_dict(WORKLOAD)
    simhw.estimate(wl, hw)                       # warm imports and caches
    api = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        simhw.estimate(wl, hw)
        api.append(time.perf_counter() - t0)
    yaml_path = ROOT / "benchmarks" / "_llama2-70b-train.yaml"
    import yaml
    yaml_path.write_text(yaml.safe_dump({**WORKLOAD, "version": 1}))
    cli = []
    try:
        for _ in range(max(3, args.repeat // 4)):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "simhw.cli", "estimate", str(yaml_path), "--hw", "a100"],
                           cwd=ROOT, check=True, capture_output=True)
            cli.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import simhw.cli"], cwd=ROOT, check=True)
        bare = time.perf_counter() - t0
    finally:
        yaml_path.unlink(missing_ok=True)
    print("| measurement | median | min |")
    print("|---|---|---|")
    print(f"| API simhw.estimate (llama2-70b train, 64 GPUs) | {statistics.median(api) * 1e3:.1f} ms | {min(api) * 1e3:.1f} ms |")
    print(f"| CLI simhw estimate wall time | {statistics.median(cli):.3f} s | {min(cli):.3f} s |")
    print(f"| python -c 'import simhw.cli' | {bare:.3f} s | |")


if __name__ == "__main__":
    main()
