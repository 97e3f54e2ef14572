#!/usr/bin/env python
"""Measure this CUDA GPU for simhw: GEMMs, SDPA prefill and decode, elementwise bandwidth,
host<->device copies, Gated DeltaNet scans (when flash-linear-attention is installed), and one small
transformer training step under torch.profiler.

    python validate/gpu/run_all.py --out DIR [--quick] [--dtype bf16|fp16] [--skip copies,train]
    python validate/gpu/run_all.py --out DIR --smoke [--device cpu]   # check the harness itself

``--smoke`` runs a handful of tiny shapes of every part in seconds, to check that the harness and
its CSV work before spending GPU time; with ``--device cpu`` it needs no GPU (host timings, copies
skipped; never mix these rows with GPU measurements).

Writes DIR/measurements.csv (simhw's measurement CSV, with a ``gpu`` column), DIR/env.json (GPU
name, clocks, driver, torch/CUDA versions), DIR/microbench.csv (L2/HBM read bandwidth by working
set, load latency; needs CuPy), DIR/floors.csv (the smallest GEMMs' and adds' time per call in a
CUDA graph against their kernels' profiled durations), DIR/scalar_kernels.csv (RMSNorm and
SiLU-and-mul with one scalar load in flight per thread, over the first waves; needs CuPy),
DIR/power_samples.csv and power_phases.csv (board power at idle, in a long GEMM and an HBM stream)
and DIR/train_step_trace.json. Then:

    simhw validate DIR/measurements.csv --hw <spec>
    simhw calibrate DIR/measurements.csv --hw <spec> -o my-gpu.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTS = ("gemm", "attention", "elementwise", "copies", "rowwise", "reuse", "scan", "floors", "microbench", "scalar",
         "power", "train")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    p.add_argument("--quick", action="store_true", help="a few shapes of each kind (about a minute)")
    p.add_argument("--skip", default="", help=f"comma-separated parts to skip: {', '.join(PARTS)}")
    p.add_argument("--smoke", action="store_true", help="tiny shapes of every part: checks the harness in seconds")
    p.add_argument("--l2", default="cold", choices=("cold", "hot"),
                   help="cold: cycle input copies covering 4x the L2 (operands from HBM; default); "
                        "hot: reuse one set of inputs (operands may stay in the L2)")
    p.add_argument("--soak", type=float, default=0.0,
                   help="seconds each GEMM/attention/elementwise kernel runs back to back before it is timed, "
                        "so the power limiter has settled (0.3 is enough on H100/H200: it acts within 0.1 s); "
                        "rows then are at the steady-state clock and are written with power=steady (simhw/cost/power.py); "
                        "without it they are written with power=burst")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="cpu only with --smoke: run the harness without a GPU")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.stderr.write("run_all: PyTorch is not installed (pip install torch).\n")
        return 2
    if args.device == "cpu" and not args.smoke:
        sys.stderr.write("run_all: --device cpu measures the host, not a GPU; it is only for --smoke.\n")
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("run_all: no CUDA GPU visible to PyTorch (--smoke --device cpu checks the harness without one).\n")
        return 2
    import attention
    import common
    import copies
    import elementwise
    import floors
    import gemm
    import microbench
    import gemm_reuse
    import power
    import rowwise
    import scalar_kernels
    import scan
    import train_step

    if args.l2 == "hot":
        common.ROTATION_L2_MULTIPLE = 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    dev, smoke = args.device, args.smoke
    unknown = skip - set(PARTS)
    if unknown:
        sys.stderr.write(f"run_all: unknown part(s) {sorted(unknown)}; allowed: {', '.join(PARTS)}.\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    env = common.environment()
    common.SOAK_S = args.soak if args.device == "cuda" else 0.0
    env["soak_s"] = common.SOAK_S
    gpu = env.get("gpu", "") if dev == "cuda" else "cpu (harness smoke run)"
    env["smoke"] = smoke
    env["l2"] = args.l2
    rows: list[dict] = []
    steps = (("gemm", lambda: gemm.measure((args.dtype,), args.quick, gpu, device=dev, smoke=smoke)),
             ("attention", lambda: attention.measure(args.dtype, quick=args.quick, gpu=gpu, device=dev, smoke=smoke)),
             ("elementwise", lambda: elementwise.measure(args.dtype, args.quick, gpu, device=dev, smoke=smoke)),
             ("copies", lambda: copies.measure(args.quick or smoke, gpu)),
             ("rowwise", lambda: rowwise.measure(args.quick, gpu, device=dev, smoke=smoke)),
             ("reuse", lambda: gemm_reuse.measure(args.quick, gpu, device=dev, smoke=smoke)),
             ("scan", lambda: scan.measure(args.dtype, args.quick, gpu, device=dev, smoke=smoke)))
    for name, fn in steps:
        if name in skip or (name == "copies" and dev == "cpu"):   # host<->device needs a device
            continue
        print(f"measuring {name} ...", flush=True)
        rows.extend(fn())
        common.write_rows(args.out / "measurements.csv", rows)   # keep partial results
        if dev == "cuda":
            env.setdefault("nvidia_smi_after", {})[name] = common.smi()   # clocks, power, temperature
    if "rowwise" not in skip:
        print("measuring embedding ...", flush=True)
        try:     # last of the kernel parts: a sort that cannot be graph-captured must not cost the others
            common.write_rows(args.out / "kernel_resources.csv", rowwise.kernel_resources(gpu, device=dev, smoke=smoke),
                              rowwise.RESOURCE_COLUMNS)
            common.write_rows(args.out / "embedding.csv", rowwise.measure_embedding(args.quick, gpu, device=dev, smoke=smoke),
                              rowwise.EMBEDDING_COLUMNS)
        except Exception as exc:   # noqa: BLE001 - as microbench
            env["embedding"] = f"failed: {exc}"
            print(f"embedding failed: {exc}", flush=True)
    if "floors" not in skip:
        print("measuring the smallest kernels' floors ...", flush=True)
        try:     # graph-replayed per call against the profiler's kernel durations (floors.py)
            frows = floors.measure(args.dtype, gpu, device=dev, smoke=smoke)
            common.write_rows(args.out / "floors.csv", frows, floors.COLUMNS)
            env["floors"] = len(frows)
        except Exception as exc:   # noqa: BLE001 - as microbench
            env["floors"] = f"failed: {exc}"
            print(f"floors failed: {exc}", flush=True)
    if "microbench" not in skip and dev == "cuda":
        print("memory microbenchmarks ...", flush=True)
        try:
            env["microbench"] = len(microbench.measure(args.out, quick=args.quick))
        except Exception as exc:   # noqa: BLE001 - the operator rows matter more: record and go on
            env["microbench"] = f"failed: {exc}"
            print(f"microbench failed: {exc}", flush=True)
    if "scalar" not in skip and dev == "cuda":
        print("scalar-load row kernels ...", flush=True)
        try:
            srows = scalar_kernels.measure(gpu, quick=args.quick)
            common.write_rows(args.out / "scalar_kernels.csv", srows, scalar_kernels.COLUMNS)
            env["scalar_kernels"] = len(srows)
        except Exception as exc:   # noqa: BLE001 - as microbench
            env["scalar_kernels"] = f"failed: {exc}"
            print(f"scalar_kernels failed: {exc}", flush=True)
    if "power" not in skip and dev == "cuda":
        print("board power under load ...", flush=True)
        try:
            env["power"] = power.measure(args.out)
        except Exception as exc:   # noqa: BLE001 - as microbench
            env["power"] = f"failed: {exc}"
            print(f"power failed: {exc}", flush=True)
    if "train" not in skip:
        print("profiling one training step ...", flush=True)
        env["train_step"] = train_step.measure(args.out, args.dtype, quick=args.quick, device=dev, smoke=smoke)
    env["kernel_timing"] = dict(common.STATS, l2_multiple=common.ROTATION_L2_MULTIPLE)
    common.write_json(args.out / "env.json", env)
    common.write_rows(args.out / "measurements.csv", rows)
    print(f"wrote {args.out / 'measurements.csv'} ({len(rows)} rows), {args.out / 'env.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
