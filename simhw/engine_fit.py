"""Fit a serving engine's overheads to measured iteration times (``simhw calibrate-engine``).

The CSV has one row per measured prefill or decode iteration: ``model`` (a built-in name), ``mode``
(prefill | decode), ``tp`` (and optionally ``pp``, default 1), ``batch`` (sequences), ``tokens``
(prompt length for prefill, context length for decode), ``measured_s``; optionally ``dtype``
(default bf16). For each row simhw costs the GPU work alone (engine ``none``); the engine's four
overheads (workload/engines.py)

    time = step_overhead + per_worker x (TP x PP - 1) + max(GPU, layers / PP x host_per_layer)
           + min(host_per_layer, GPU / layers) + per_sequence x batch

are then fitted by ``scipy.optimize.least_squares`` on the log error of a deterministic 70 % of
the rows (soft-L1 loss, all four non-negative); the report gives the held-back error with the
spec's default engine and with the fitted one, and the result renders as an ``engine:`` block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

COLUMNS = ("model", "mode", "tp", "batch", "tokens", "measured_s")
FIELDS = ("step_overhead", "per_sequence", "host_per_layer", "per_worker")
_ENGINE_FIELDS = tuple(f"{name}_s" for name in FIELDS)     # workload.spec.EngineOptions


@dataclass(frozen=True)
class Iteration:
    line: int
    model: str
    mode: str
    tp: int
    pp: int
    batch: int
    tokens: int
    dtype: str
    measured_s: float
    gpu_s: float = 0.0          # simhw's GPU time, engine none
    layers: int = 0
    default_s: float = 0.0      # simhw's time with the spec's engine


def read_iterations(path: str | Path) -> list[Iteration]:
    """Rows of the CSV at ``path``; a bad row is a DataError naming its line and column."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}).") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; needed: {', '.join(COLUMNS)} "
                        "(pp and dtype optional).")
    rows = []
    for i, r in enumerate(df.to_dict("records"), start=2):
        where = f"{path}: line {i}"
        mode = r["mode"].strip().lower()
        if mode not in ("prefill", "decode"):
            raise DataError(f"{where}: mode {r['mode']!r} is not allowed; use prefill or decode.")
        try:
            ints = {k: int(r[k]) for k in ("tp", "batch", "tokens")}
            pp = int(r.get("pp") or 1)
            measured = float(r["measured_s"])
        except ValueError:
            raise DataError(f"{where}: tp, pp, batch and tokens must be whole numbers and measured_s a "
                            "number of seconds.") from None
        if min(*ints.values(), pp) < 1 or not measured > 0 or not math.isfinite(measured):
            raise DataError(f"{where}: tp, pp, batch, tokens must be at least 1 and measured_s positive.")
        rows.append(Iteration(i, r["model"].strip(), mode, ints["tp"], pp, ints["batch"], ints["tokens"],
                              (r.get("dtype") or "bf16").strip(), measured))
    if not rows:
        raise DataError(f"{path}: no rows.")
    return rows


def cost_iterations(rows: list[Iteration], hw) -> list[Iteration]:
    """Each row with simhw's GPU time (engine none), its layer count and its time with the spec's engine."""
    from dataclasses import replace

    from .cost.estimate import estimate
    from .errors import WorkloadError
    from .workload.from_yaml import workload_from_dict

    out = []
    for r in rows:
        common = {"model": r.model, "mode": r.mode, "dtype": r.dtype, "devices": r.tp * r.pp,
                  "parallelism": {"tp": r.tp, "pp": r.pp}, "micro_batch": r.batch, "global_batch": r.batch}
        if r.mode == "prefill":
            common["seq_len"] = r.tokens
        else:
            common.update(seq_len=r.tokens + 1, decode={"context_len": r.tokens, "new_tokens": 1})
        try:
            wl = workload_from_dict(common, f"line {r.line}")
        except WorkloadError as exc:
            raise DataError(f"row {exc}") from None
        gpu = estimate(replace(wl, engine=replace(wl.engine, **dict.fromkeys(_ENGINE_FIELDS, 0.0))), hw)
        default = estimate(wl, hw)
        out.append(replace(r, gpu_s=gpu.step_time_s, layers=wl.model.layers, default_s=default.step_time_s))
    return out


def predict_s(r: Iteration, x) -> float:
    """The iteration time of ``r`` with engine overheads ``x`` (FIELDS order, seconds)."""
    step, per_seq, host, worker = x
    return step + worker * (r.tp * r.pp - 1) + max(r.gpu_s, r.layers / r.pp * host) \
        + min(host, r.gpu_s / r.layers) + per_seq * r.batch


@dataclass(frozen=True)
class EngineFit:
    values_s: dict                 # field -> seconds
    n_train: int
    n_held: int
    before: tuple[float, float]    # held-back (median, p90) |error| with the spec's engine
    after: tuple[float, float]     # ... with the fitted engine

    def report(self) -> str:
        lines = [f"fitted on {self.n_train} rows, checked on {self.n_held} held-back rows",
                 f"held-back error with the spec's engine: median {100 * self.before[0]:.1f}%, "
                 f"p90 {100 * self.before[1]:.1f}%",
                 f"held-back error with the fitted engine: median {100 * self.after[0]:.1f}%, "
                 f"p90 {100 * self.after[1]:.1f}%"]
        lines += [f"  {k:<15} {_time(v)}" for k, v in self.values_s.items()]
        return "\n".join(lines) + "\n"

    def yaml(self, source: str, hw_name: str) -> str:
        head = (f"# Serving-engine overheads fitted by `simhw calibrate-engine {source} --hw {hw_name}`:\n"
                f"# held-back median error {100 * self.after[0]:.1f}% (spec's engine: "
                f"{100 * self.before[0]:.1f}%). Paste into a workload.\n")
        return head + "engine:\n" + "".join(f"  {k}: {_time(v)}\n" for k, v in self.values_s.items())


def fit_engine(rows: list[Iteration], train_share: float = 0.7) -> EngineFit:
    """Least squares on the log error of the training rows (module docstring)."""
    import numpy as np
    from scipy.optimize import least_squares

    from .calibrate import in_split
    from .validation.stats import percentile

    train = [r for r in rows if in_split(str(r.line), train_share)]
    held = [r for r in rows if r not in train] or train
    if len(train) < 4:
        raise DataError(f"{len(train)} training rows: give at least 6 iterations to fit four overheads.")

    def residuals(x):
        return np.array([math.log(predict_s(r, x) / r.measured_s) for r in train])

    def fit_from(x0, fixed_host=None):
        scale = np.maximum(np.abs(x0), 1e-5)
        if fixed_host is None:
            return least_squares(residuals, x0, bounds=(0.0, np.inf), loss="soft_l1", f_scale=0.05, x_scale=scale)
        return least_squares(lambda y: residuals([y[0], y[1], fixed_host, y[2]]), x0[[0, 1, 3]], bounds=(0.0, np.inf),
                             loss="soft_l1", f_scale=0.05, x_scale=scale[[0, 1, 3]])

    # the host floor enters through a max(), flat wherever the GPU is slower: scan it, then refine all four
    longest = min(5e-3, max(r.measured_s * r.pp / r.layers for r in train))
    start = np.array([1e-3, 5e-5, 0.0, 1e-4])
    best = None
    for host in np.concatenate([[0.0], np.geomspace(1e-6, longest, 48)]):
        f = fit_from(start, host)
        if best is None or f.cost < best[0]:
            best = (f.cost, np.array([f.x[0], f.x[1], host, f.x[2]]))
    x = [float(v) for v in fit_from(best[1]).x]

    def stats(pred):
        ape = [abs(p / r.measured_s - 1) for p, r in zip(pred, held)]
        return percentile(ape, 50), percentile(ape, 90)

    return EngineFit(dict(zip(FIELDS, x)), len(train), len(held),
                     stats([r.default_s for r in held]), stats([predict_s(r, x) for r in held]))


def _time(seconds: float) -> str:
    if seconds == 0:
        return "0 s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"
