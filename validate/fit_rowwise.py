#!/usr/bin/env python
"""Fit the row-wise kernel constants (simhw/cost/rowwise.py ROW_KERNELS: clock cycles per block
and per element of each PyTorch kernel) on the H100 sweep and check them on the H200's.

    python validate/fit_rowwise.py            # fit on H100, print constants and errors on both GPUs
    python validate/fit_rowwise.py --check    # errors of the committed constants, no fit, and of
                                              # pricing the same rows by their bytes alone

Data: validate/data/<gpu>-2026-11-26/measurements-rowwise.csv (validate/gpu/rowwise.py: 7 ops x
11 row widths x bf16/fp32 x 4 Mi/32 Mi elements per GPU, CUDA-graph kernel times). The fit
minimises the squared log error over the H100 rows (scipy least_squares); the H200 rows are not
used, so their error is a check on another memory system (HBM3e, 60 MiB L2) with the same SMs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simhw.cost.rowwise import ROW_KERNELS, KernelConstants, RowOp, rowwise_time_s  # noqa: E402
from simhw.spec.load import load_hw  # noqa: E402

DATA = ROOT / "validate" / "data"
RUNS = {"h100": DATA / "h100-2026-11-26" / "measurements-rowwise.csv",
        "h200": DATA / "h200-2026-11-26" / "measurements-rowwise.csv"}
ESIZE = {"bf16": 2, "fp16": 2, "fp32": 4}
# fixed cycles per kernel family, cycles per element per epilogue: which fitted value each
# ROW_KERNELS entry takes (softmax and log-softmax share a family's fixed work)
FIXED = {"layer_norm": "ln", "rms_norm": "rms", "layer_norm_grad_input": "lnb", "gamma_beta": "gb",
         "softmax_warp": "warp", "log_softmax_warp": "warp", "softmax_warp_backward": "warpb",
         "softmax_reg": "reg", "log_softmax_reg": "reg", "softmax_smem": "smem", "log_softmax_smem": "smem",
         "softmax_block": "block", "log_softmax_block": "block", "softmax_smem_backward": "smemb",
         "softmax_block_backward": "blockb"}
PER_ELEMENT = {"layer_norm": "ln", "rms_norm": "rms", "layer_norm_grad_input": "lnb", "gamma_beta": "gb",
               "softmax_warp": "sm", "log_softmax_warp": "lsm", "softmax_warp_backward": "b",
               "softmax_reg": "sm", "log_softmax_reg": "lsm", "softmax_smem": "sm", "log_softmax_smem": "lsm",
               "softmax_block": "sm", "log_softmax_block": "lsm", "softmax_smem_backward": "b",
               "softmax_block_backward": "b"}
FIXED_KEYS = sorted(set(FIXED.values()))
ELEM_KEYS = sorted(set(PER_ELEMENT.values()))


def rows(gpu: str) -> pd.DataFrame:
    d = pd.read_csv(RUNS[gpu])
    d = d[d["kind"].isin(["norm", "softmax"])].copy()
    d["name"] = d["op"]
    return d.reset_index(drop=True)


def constants(x) -> tuple[dict[str, KernelConstants], float]:
    fixed = dict(zip(FIXED_KEYS, x[:len(FIXED_KEYS)]))
    elem = dict(zip(ELEM_KEYS, x[len(FIXED_KEYS):-1]))
    return {k: KernelConstants(float(fixed[FIXED[k]]), float(elem[PER_ELEMENT[k]])) for k in FIXED}, float(x[-1])


def predict(d: pd.DataFrame, hw, table, p: float | None = None) -> np.ndarray:
    out = []
    for r in d.itertuples():
        body, kernels = rowwise_time_s(RowOp(r.name), r.row, r.elements, ESIZE[r.dtype], hw, table, p)
        out.append(body + kernels * hw.efficiency.launch_s)
    return np.array(out)


def by_bytes(d: pd.DataFrame, hw) -> np.ndarray:
    """The same rows priced by their bytes (no ``row``: the elementwise roofline)."""
    from simhw.validation import frame_to_measurements
    from simhw.validation.predict import predict_s

    rows, _ = frame_to_measurements(d.drop(columns=["row"]))
    return np.array([predict_s(m, hw) for m in rows])


def summary(d: pd.DataFrame, pred: np.ndarray) -> str:
    err = pred / d["measured_s"].to_numpy() - 1
    lines = [f"  all: n={len(d)} median {np.median(np.abs(err)):.1%} p90 {np.quantile(np.abs(err), 0.9):.1%}"]
    for name, idx in d.groupby("name").groups.items():
        e = np.abs(err[idx])
        lines.append(f"  {name:22s} median {np.median(e):5.1%} p90 {np.quantile(e, 0.9):5.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only print the errors of the committed constants")
    args = p.parse_args(argv)
    data = {g: rows(g) for g in RUNS if RUNS[g].is_file()}
    hws = {g: load_hw(g) for g in data}
    if args.check:
        for g, d in data.items():
            print(f"{g} (committed constants):\n{summary(d, predict(d, hws[g], ROW_KERNELS))}")
            print(f"{g} (bytes alone, as before cost/rowwise.py):\n{summary(d, by_bytes(d, hws[g]))}")
            ratio = d["measured_s"].to_numpy() / by_bytes(d, hws[g])
            worst = d.iloc[int(np.argmax(ratio))]
            print(f"  slowest against its bytes: {worst['label']} ({worst['dtype']}), {ratio.max():.0f}x")
        return 0
    from scipy.optimize import least_squares

    fit = data["h100"]
    x0 = [1500.0] * len(FIXED_KEYS) + [60.0] * len(ELEM_KEYS) + [2.0]
    lo = [0.0] * (len(x0) - 1) + [1.0]
    hi = [2e4] * len(FIXED_KEYS) + [1e3] * len(ELEM_KEYS) + [20.0]
    measured = fit["measured_s"].to_numpy()
    res = least_squares(lambda x: np.log(predict(fit, hws["h100"], *constants(x)) / measured), x0,
                        bounds=(lo, hi), x_scale=[1000.0] * len(FIXED_KEYS) + [50.0] * len(ELEM_KEYS) + [1.0],
                        diff_step=1e-3)
    table, p = constants(res.x)
    print(f"ROW_OVERLAP = {p:.2f}")
    print("ROW_KERNELS = {")
    for k, c in table.items():
        print(f'    "{k}": KernelConstants({c.fixed_cycles:.0f}.0, {c.cycles_per_element:.0f}.0),')
    print("}")
    for g, d in data.items():
        tag = "fit" if g == "h100" else "check, not fitted"
        print(f"{g} ({tag}):\n{summary(d, predict(d, hws[g], table, p))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
