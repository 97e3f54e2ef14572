#!/usr/bin/env python
"""Fit the chain length of PyTorch's embedding backward (simhw/cost/embedding.py PARTIAL_ROUND_TRIPS:
dependent round trips of a compute_grad_weight block; sum_and_scatter's SCATTER_ROUND_TRIPS = 3 is
counted from the kernel, not fitted: the two trade off on these rows) on the H100's embedding.csv
and check it on the H200's.

    python validate/fit_embedding.py            # fit on H100 (grid search), errors on both GPUs
    python validate/fit_embedding.py --check    # errors of the committed constants

Data: validate/data/<gpu>-2026-11-26/embedding.csv (validate/gpu/rowwise.py measure_embedding:
six vocab x hidden x tokens shapes, bf16, uniform ids, CUDA-graph kernel times).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simhw.cost.embedding as emb  # noqa: E402
from simhw.spec.load import load_hw  # noqa: E402

DATA = ROOT / "validate" / "data"
RUNS = {"h100": DATA / "h100-2026-11-26" / "embedding.csv", "h200": DATA / "h200-2026-11-26" / "embedding.csv"}


def errors(d: pd.DataFrame, hw, partial_round_trips: float = emb.PARTIAL_ROUND_TRIPS) -> np.ndarray:
    pred = []
    for r in d.itertuples():
        body, kernels = emb.embedding_backward_time_s(r.tokens, r.vocab, r.hidden, 2, hw, partial_round_trips)
        pred.append(body + kernels * hw.efficiency.launch_s)
    return np.array(pred) / d["measured_s"].to_numpy() - 1


def by_bytes(d: pd.DataFrame, hw) -> np.ndarray:
    """The same rows priced as before cost/embedding.py: the trace rule's bytes (table zeroed,
    gradient rows read and added) with one launch per kernel the names list."""
    from simhw.cost.roofline import op_cost
    from simhw.spec.model import DType
    from simhw.trace.ops import Args, rule_for
    from simhw.workload.graph import Op, Phase, shape

    out = []
    for r in d.itertuples():
        est = rule_for("aten::embedding_dense_backward").fn(Args(
            [[r.tokens, r.hidden], [r.tokens], [], [], []], ["c10::BFloat16", "long int", "Scalar", "Scalar", "Scalar"],
            ["", "", str(r.vocab), "-1", "False"]))
        keys = dict(elements=est.shape["elements"], launches=float(r.kernels.count("|") + 1))
        op = Op("embedding_dense_backward", est.kind, Phase.BWD, -1, est.flops, DType.BF16,
                input_bytes=est.input_bytes, output_bytes=est.output_bytes, shape=shape(**keys))
        out.append(op_cost(op, hw).time_s)
    return np.array(out) / d["measured_s"].to_numpy() - 1


def summary(err: np.ndarray) -> str:
    a = np.abs(err)
    return f"n={len(a)} median {np.median(a):.1%} p90 {np.quantile(a, 0.9):.1%} bias {np.median(err):+.1%}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only print the errors of the committed constants")
    args = p.parse_args(argv)
    data = {g: pd.read_csv(path).query("direction == 'backward'") for g, path in RUNS.items() if path.is_file()}
    hws = {g: load_hw(g) for g in data}
    if not args.check:
        grid = np.arange(1.0, 15.01, 0.5)
        trips = min(grid, key=lambda c: float(np.sum(np.log1p(errors(data["h100"], hws["h100"], c)) ** 2)))
        print(f"PARTIAL_ROUND_TRIPS = {trips:.1f} (fitted on h100; SCATTER_ROUND_TRIPS = {emb.SCATTER_ROUND_TRIPS:.1f})")
    else:
        trips = emb.PARTIAL_ROUND_TRIPS
    for g, d in data.items():
        print(f"{g}: {summary(errors(d, hws[g], trips))}")
        base = by_bytes(d, hws[g])
        print(f"  by bytes alone: {summary(base)}; measured / bytes-only {1 / (1 + base.max()):.1f}-{1 / (1 + base.min()):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
