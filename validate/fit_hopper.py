#!/usr/bin/env python
"""Where three Hopper constants of hwspecs/h100.yaml and h200.yaml come from, from simhw's own runs
(validate/data/h100-2026-11-26, h200-2026-11-26); the H100 is the fit, the H200 the check; and the
Inductor kernels' sums that simhw/trace/inductor.py quotes.

    python validate/fit_hopper.py        # all of it (about a minute)

- efficiency.gemm_l2_ratio: GEMM errors (median / p90) of each GEMM file at several ratios;
- energy.flop.fp16: the paired bf16 and fp16 GEMM runs' measured time ratio by size (the power
  limit acts on the large ones), and the fp16 files' GEMM bias with fp16 priced as bf16 and as the
  spec prices it;
- efficiency.attention_backward_fraction: for each profiled training step, the backward attention
  kernels' predicted / measured time over the forward's with the fraction at 1, i.e. the fraction
  that prices the backward as well as the forward;
- the two profiled torch.compile steps (H200): the Triton kernels' predicted over measured time,
  summed, and their median error one by one (no constant is fitted on them).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validate"))

from gpu.common import held_s  # noqa: E402
from simhw.spec.load import load_hw  # noqa: E402
from simhw.spec.model import DType  # noqa: E402
from simhw.validation import evaluate, read_measurements  # noqa: E402

DATA = ROOT / "validate" / "data"
GEMM_FILES = ("measurements.csv", "measurements-steady.csv", "measurements-fp16.csv")
TRACES = ("train_step_trace.json.gz", "train_e2e_12x768_trace.json.gz", "train_e2e_32x2560_trace.json.gz",
          "train_e2e_12x768-fusedadam-compiled_trace.json.gz", "train_e2e_32x2560-fusedadam-compiled_trace.json.gz")


def _gemm_rows(spec: str, name: str):
    rows, bad = read_measurements(DATA / f"{spec}-2026-11-26" / name)
    rows = [dataclasses.replace(m, held_s=held_s(m.measured_s)) if m.timing == "kernel" and m.held_s is None else m
            for m in rows if m.kind == "gemm"]      # the harness's launches per row, as validate/own_runs.py
    return rows, bad


def _efficiency(hw, **values):
    return dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, **values))


def gemm_errors(spec: str, name: str, ratio: float) -> tuple[float, float]:
    """(median, p90) GEMM error of one file with gemm_l2_ratio at ``ratio``."""
    rows, bad = _gemm_rows(spec, name)
    st = evaluate(rows, _efficiency(load_hw(spec), gemm_l2_ratio=ratio), name, bad).kinds["gemm"]
    return st.median_ape, st.p90_ape


def fp16_time_ratios(spec: str) -> pd.Series:
    """Measured fp16 / bf16 time of the same GEMM shapes, median by FLOPs."""
    a = pd.read_csv(DATA / f"{spec}-2026-11-26" / "measurements.csv")
    b = pd.read_csv(DATA / f"{spec}-2026-11-26" / "measurements-fp16.csv")
    m = a[a.kind == "gemm"].merge(b[b.kind == "gemm"], on=["m", "n", "k"], suffixes=("_bf", "_fp"))
    band = pd.cut(2 * m.m * m.n * m.k, [0, 1e10, 1e11, 1e12, 1e15], labels=["<1e10", "1e10-1e11", "1e11-1e12", ">1e12"])
    return (m.measured_s_fp / m.measured_s_bf).groupby(band, observed=True).median()


def fp16_bias(spec: str) -> tuple[float, float]:
    """The fp16 file's GEMM bias with fp16 priced as bf16, and as the spec prices it."""
    hw = load_hw(spec)
    energy = dict(hw.energy_j_per_flop)
    as_bf16 = dataclasses.replace(hw, energy_j_per_flop={**energy, DType.FP16: energy[DType.BF16]})
    rows, bad = _gemm_rows(spec, "measurements-fp16.csv")
    return tuple(evaluate(rows, h, "fp16", bad).kinds["gemm"].bias for h in (as_bf16, hw))


def backward_fractions() -> dict[str, float]:
    """Per profiled step: (backward attention pred / meas) / (forward pred / meas), fraction at 1."""
    from simhw.trace.cost import validate_trace

    out = {}
    for spec in ("h100", "h200"):
        hw = _efficiency(load_hw(spec), attention_backward_fraction=1.0)
        for name in TRACES:
            path = DATA / f"{spec}-2026-11-26" / name
            if path.is_file():
                att = validate_trace(path, hw).query("kind == 'attention'")
                r = {ph: g.predicted_s.sum() / g.measured_s.sum() for ph, g in att.groupby("phase")}
                if "fwd" in r and "bwd" in r:
                    out[f"{spec} {name}"] = r["bwd"] / r["fwd"]
    return out


COMPILED = ("12x768", "32x2560")


def inductor_sums() -> dict[str, tuple[int, float, float]]:
    """Per profiled compiled step: (Triton kernels, their summed predicted / measured time, median
    absolute error one by one), priced on the h200 spec as a burst (the trace default)."""
    from simhw.validation import trace_result

    out = {}
    for size in COMPILED:
        path = DATA / "h200-2026-11-26" / f"train_e2e_{size}-fusedadam-compiled_trace.json.gz"
        tri = [r for r in trace_result(path, load_hw("h200")).rows if r.label.startswith("triton_")]
        ratio = sum(r.predicted_s for r in tri) / sum(r.measured_s for r in tri)
        out[size] = (len(tri), ratio, float(np.median([abs(r.predicted_s / r.measured_s - 1) for r in tri])))
    return out


def main() -> int:
    print("gemm_l2_ratio: GEMM median / p90 error per file")
    for spec in ("h100", "h200"):
        for name in GEMM_FILES:
            cells = [f"{r:.1f}: {100 * m:.1f}% / {100 * q:.1f}%" for r in (1.0, 1.2, 1.5, 2.0)
                     for m, q in [gemm_errors(spec, name, r)]]
            print(f"  {spec} {name:26s} " + " | ".join(cells) + f"   (spec: {load_hw(spec).efficiency.gemm_l2_ratio})")
    print("energy.flop.fp16: measured fp16 / bf16 GEMM time, median by FLOPs; fp16 file's GEMM bias")
    for spec in ("h100", "h200"):
        energy = load_hw(spec).energy_j_per_flop
        as_bf16, now = fp16_bias(spec)
        print(f"  {spec}: " + ", ".join(f"{k} FLOP {v:.3f}" for k, v in fp16_time_ratios(spec).items())
              + f"; bias {100 * as_bf16:+.1f}% as bf16, {100 * now:+.1f}% at "
              f"{energy[DType.FP16] / energy[DType.BF16]:.2f} x bf16")
    print("attention_backward_fraction: (backward pred / meas) / (forward pred / meas) with the fraction at 1")
    fractions = backward_fractions()
    for key, value in fractions.items():
        print(f"  {key}: {value:.2f}")
    print(f"  median {np.median(list(fractions.values())):.2f} "
          f"(spec: {load_hw('h100').efficiency.attention_backward_fraction})")
    print("Inductor's Triton kernels in the profiled compiled steps (H200): predicted / measured, summed; median error")
    for size, (n, ratio, median) in inductor_sums().items():
        print(f"  {size}: {n} kernels, {ratio:.2f}, median {100 * median:.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
