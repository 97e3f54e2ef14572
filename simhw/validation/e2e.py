"""End to end: Splitwise's measured prefill and decode-iteration times on DGX-A100 against
:func:`simhw.estimate` in prefill / decode mode.

Source: Mutinifni/splitwise-sim@8f99e7dc data/perf_model.csv (a100-80gb rows): Llama-2-70B at
TP 2/4/8 and BLOOM-176B at TP 8; ``prompt_time`` is the prefill of ``batch_size`` prompts of
``prompt_size`` tokens, ``token_time`` the mean decode iteration (ms), 5 repeats (median used).
simhw costs the same batch on the node (dgx-a100: NVLink for the tensor-parallel all-reduces)
with a KV length for decode halfway through generation (context = prompt, new tokens = output).
Serving-engine overheads are the spec's ``engine_step_overhead`` (per iteration: scheduler,
sampling, Python) and ``engine_per_token`` (per sequence and iteration); both are added by
simhw.estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass(frozen=True)
class E2ERow:
    model: str
    tp: int
    batch: int
    prompt: int
    output: int
    phase: str              # prefill | decode
    measured_s: float
    predicted_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0


def splitwise_rows(folder: str | Path, hw="dgx-a100", hardware: str = "a100-80gb") -> list[E2ERow]:
    import pandas as pd

    from ..cost.estimate import estimate
    from ..spec.load import load_hw
    from ..workload.from_yaml import workload_from_dict

    files = sorted(Path(folder).rglob("perf_model*.csv"))
    if not files:
        raise DataError(f"{folder}: no perf_model*.csv (Splitwise) found.")
    df = pd.concat([pd.read_csv(f) for f in files])
    df = df[df.hardware == hardware]
    if isinstance(hw, str):
        hw = load_hw(hw)
    keys = ["model", "tensor_parallel", "batch_size", "prompt_size", "token_size"]
    med = df.groupby(keys)[["prompt_time", "token_time"]].median().reset_index()
    out: list[E2ERow] = []
    for r in med.itertuples(index=False):
        tp, b, p, o = int(r.tensor_parallel), int(r.batch_size), int(r.prompt_size), int(r.token_size)
        common = {"model": r.model, "dtype": "fp16", "devices": tp, "parallelism": {"tp": tp},
                  "micro_batch": b, "global_batch": b}
        pre = workload_from_dict({**common, "mode": "prefill", "seq_len": p}, "splitwise")
        dec = workload_from_dict({**common, "mode": "decode", "seq_len": p + o,
                                  "decode": {"context_len": p, "new_tokens": o}}, "splitwise")
        out.append(E2ERow(r.model, tp, b, p, o, "prefill", r.prompt_time * 1e-3, estimate(pre, hw).step_time_s))
        out.append(E2ERow(r.model, tp, b, p, o, "decode", r.token_time * 1e-3, estimate(dec, hw).step_time_s))
    return out


def splitwise_table(rows: list[E2ERow]) -> tuple[str, str]:
    """(markdown section for REPORT.md, one summary row for the accuracy table)."""
    from .stats import percentile

    lines = ["## End to end: Splitwise (DGX-A100)", "",
             "simhw.estimate in prefill / decode mode against Mutinifni/splitwise-sim@8f99e7dc perf_model.csv "
             "(a100-80gb rows, median of 5 repeats); decode uses a KV length halfway through generation. "
             "Engine overheads: the spec's engine_step_overhead and engine_per_token.", "",
             "| model | TP | phase | n | median error | p90 error | bias |", "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    groups: dict[tuple, list[E2ERow]] = {}
    for r in rows:
        groups.setdefault((r.model, r.tp, r.phase), []).append(r)
    for (model, tp, phase), rs in sorted(groups.items()):
        ape = [abs(r.error) for r in rs]
        lines.append(f"| {model} | {tp} | {phase} | {len(rs)} | {100 * percentile(ape, 50):.1f}% | "
                     f"{100 * percentile(ape, 90):.1f}% | {100 * percentile([r.error for r in rs], 50):+.1f}% |")
    ape = [abs(r.error) for r in rows]
    bias = percentile([r.error for r in rows], 50)
    lines += ["", f"All {len(rows)} configurations: median {100 * percentile(ape, 50):.1f}%, p90 "
              f"{100 * percentile(ape, 90):.1f}%, bias {100 * bias:+.1f}% (target: median 10%)."]
    summary = (f"| splitwise-sim | end-to-end prefill + decode step | {len(rows)} | {100 * percentile(ape, 50):.1f}% | "
               f"{100 * percentile(ape, 90):.1f}% | {100 * bias:+.1f}% |")
    return "\n".join(lines), summary
