"""What-if sweeps: one workload estimated over the cartesian product of values of workload fields
(``parallelism.tp``, ``micro_batch``, ``memory.recompute``, ``model``) and hardware spec fields
(``hw.memory.hbm.bandwidth``, ``hw.compute.peak.bf16``, ``hw.efficiency.launch``; on a node
``hw.device.<path>`` or ``hw.links.intra.bandwidth``), on each machine named. The questions of
an ML systems engineer (which parallelism and batch fit and run cheapest) and of an architect
(what twice the HBM bandwidth, a faster link or a bigger L2 would buy) in one table.

Each combination is an ordinary estimate (cost/estimate.py) of a workload and spec loaded with the
values set, as ``--set`` and a spec's YAML would set them, so units and checks are the usual ones.
A combination the workload or spec rejects (say tp not dividing the heads) is a row with its
error; when every combination is rejected the first error is raised.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import SimhwError

HW_PREFIX = "hw."
MAX_COMBINATIONS = 4096


@dataclass(frozen=True)
class SweepRow:
    hardware: str                        # the machine as named (a shipped name or a spec path)
    values: tuple[tuple[str, str], ...]  # (key, value as given) of every varied field
    result: Any = None                   # cost.estimate.EstimateResult, or None when rejected
    error: str = ""

    def to_dict(self) -> dict:
        out: dict = {"hardware": self.hardware, "values": dict(self.values), "error": self.error or None}
        if self.result is not None:
            r = self.result
            out.update(spec=r.hardware, step_time_s=r.step_time_s, total_time_s=r.total_time_s,
                       tokens_per_s=r.tokens_per_s, mfu=r.mfu, peak_memory_bytes=r.memory.peak_bytes,
                       fits=r.memory.fits, energy_j=r.energy_j, cost_usd=r.cost_usd,
                       energy_j_per_token=per_token(r, r.energy_j),
                       cost_usd_per_million_tokens=per_token(r, r.cost_usd) * 1e6)
        return out


def per_token(result, amount: float) -> float:
    """``amount`` (per step) per token the step processes (throughput x step time)."""
    tokens = result.tokens_per_s * result.step_time_s
    return amount / tokens if tokens > 0 else float("inf")


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``KEY=V1,V2,...`` (repeatable) -> [(key, [values])]; values as YAML text, split on commas."""
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        values = [v.strip() for v in text.split(",")]
        if not sep or not key or not text.strip() or any(not v for v in values):
            raise SimhwError(f"--vary {item!r}: expected KEY=V1,V2,... with no empty value, e.g. "
                             f"--vary parallelism.tp=1,2,4 or --vary hw.memory.hbm.bandwidth=2TB/s,4TB/s.")
        if key in (k for k, _ in out):
            raise SimhwError(f"--vary {key}: given twice; list all its values in one --vary.")
        if key == "hw" or key.startswith(HW_PREFIX) and len(key) == len(HW_PREFIX):
            raise SimhwError(f"--vary {item!r}: name a spec field after 'hw.', e.g. hw.memory.hbm.bandwidth; "
                             f"to compare machines, repeat --hw.")
        out.append((key, values))
    if not out:
        raise SimhwError("sweep: give at least one --vary KEY=V1,V2,...")
    combos = 1
    for _, values in out:
        combos *= len(values)
    if combos > MAX_COMBINATIONS:
        raise SimhwError(f"sweep: {combos} combinations of the --vary values; at most {MAX_COMBINATIONS} are run. "
                         f"Give fewer values.")
    return out


def sweep(workload_path: str, hw_names: Sequence[str], vary: Sequence[tuple[str, list[str]]],
          overrides: Sequence[str] = (), power: str = "auto") -> list[SweepRow]:
    """Estimate ``workload_path`` (with ``overrides``, as --set) on every machine of ``hw_names``
    for every combination of the ``vary`` values (keys starting ``hw.`` change the spec)."""
    import yaml

    from ..cost.estimate import estimate
    from ..cost.power import PowerState
    from ..spec.load import load_hw_varied
    from ..workload.from_yaml import load_workload

    if str(workload_path).endswith((".json", ".json.gz")):
        raise SimhwError(f"{workload_path}: sweep varies a workload YAML's fields; a profiler trace has none.")
    state = None if power == "auto" else PowerState(power)
    keys = [k for k, _ in vary]
    rows: list[SweepRow] = []
    first_error: SimhwError | None = None
    for name in hw_names:
        for combo in itertools.product(*(values for _, values in vary)):
            given = tuple(zip(keys, combo))
            wl_set = [f"{k}={v}" for k, v in given if not k.startswith(HW_PREFIX)]
            hw_set = [(k[len(HW_PREFIX):], yaml.safe_load(v)) for k, v in given if k.startswith(HW_PREFIX)]
            try:
                wl = load_workload(workload_path, list(overrides) + wl_set)
                hw = load_hw_varied(name, hw_set)
                rows.append(SweepRow(name, given, estimate(wl, hw, power=state)))
            except SimhwError as exc:
                first_error = first_error or exc
                rows.append(SweepRow(name, given, error=str(exc)))
    if all(r.result is None for r in rows) and first_error is not None:
        raise first_error
    return rows
