"""Fit the efficiency constants of a spec to measurements (``simhw calibrate``).

The measurement CSV (simhw/validation/schema.py) is split deterministically by a hash of each
row's line, kind and label into a training part (``train_share``) and a held-back part. On the
training rows, ``scipy.optimize.least_squares`` minimises the log error ``log(predicted /
measured)`` (soft-L1 loss, robust to outliers) over the efficiency constants the file's op kinds
exercise (:data:`PARAMS`; collectives inside a node add collective_p2p_fraction for send/recv rows,
collective_local_copy when their group sizes vary and collective_peer_latency_s when their
all-to-alls' do; GEMM rows add gemm_light_k_step_s where the spec has the library's one-stage
kernel); the other constants stay as the base spec has them. The result reports
the error before and after on the held-back rows and renders a YAML that ``extends:`` the base
spec and overrides only ``efficiency:``.
On a node spec whose rows include collectives across nodes, the node's network link is fitted
too (:data:`NETWORK_PARAMS`: its per-NIC bandwidth, per-hop latency and, when the rows put
different numbers of ranks on each node, the node's NIC count): a cluster's fabric is a property of
the cluster, not of the GPU, and often far from the datasheet (vidur's "DGX-A100" rows move about
8 GB/s point to point, validate/REPORT.md, where HDR InfiniBand gives 25 GB/s). The
result is then a node spec (calibrated_node_yaml) whose device is the calibrated device spec.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Sequence

from .errors import DataError
from .spec.model import DeviceSpec, Efficiency, LinkSpec, NodeSpec
from .validation.schema import Measurement
from .validation.stats import GroupStats, RowResult, group_stats

# Efficiency constants fitted for each kind of measurement (only those whose kind is present).
PARAMS = {
    "gemm": ("compute_fraction", "memory_fraction", "write_fraction", "l2_fraction", "gemm_cta_overhead_s", "launch_s"),
    "attention": ("attention_compute_fraction", "attention_memory_fraction", "attention_cta_overhead_s",
                  "attention_block_latency_s", "attention_overhead_s"),
    "collective": ("collective_latency_s", "collective_hop_latency_s", "collective_bus_fraction",
                   "collective_ll_fraction"),
    "elementwise": ("elementwise_memory_fraction", "bandwidth_ramp_bytes"),
    "norm": ("elementwise_memory_fraction", "bandwidth_ramp_bytes"),
    "softmax": ("elementwise_memory_fraction", "bandwidth_ramp_bytes"),
    "wall": ("host_launch_gap_s",),
    "compiled": ("host_compiled_call_gap_s",),
    "copy": ("host_copy_fraction",),
    "scan": ("scan_step_latency_s", "attention_memory_fraction"),
}
# The node's network link (comm.group_link aggregates it over the ranks each node contributes).
NETWORK_PARAMS = ("network_bandwidth_bytes_per_s", "network_latency_s", "network_nics")
# lower bounds of the fitted times (s); launch: no kernel takes less than about 0.7 us (the smallest
# kernels of simhw's H100/H200 training-step traces, validate/data/*/train_step_trace.json.gz)
_FLOORS = {"host_launch_gap_s": 1e-6, "host_compiled_call_gap_s": 1e-6, "attention_block_latency_s": 1e-7,
           "attention_overhead_s": 1e-7, "attention_cta_overhead_s": 1e-7, "gemm_cta_overhead_s": 1e-8,
           "gemm_light_k_step_s": 1e-8,
           "network_latency_s": 1e-8, "launch_s": 5e-7, "scan_step_latency_s": 1e-8,
           "collective_peer_latency_s": 1e-8, "collective_local_copy": 1e-3}


def with_efficiency(hw: DeviceSpec | NodeSpec, **changes) -> DeviceSpec | NodeSpec:
    """``hw`` with some efficiency constants replaced (a node's device is changed); the
    :data:`NETWORK_PARAMS` replace a node's network bandwidth and latency."""
    net = {k: changes.pop(k) for k in NETWORK_PARAMS if k in changes}
    if isinstance(hw, NodeSpec):
        if net:
            if hw.network is None:
                raise DataError(f"'{hw.name}' has no network link to fit.")
            hw = dataclasses.replace(hw, network=dataclasses.replace(
                hw.network, bandwidth_bytes_per_s=net.get("network_bandwidth_bytes_per_s", hw.network.bandwidth_bytes_per_s),
                latency_s=net.get("network_latency_s", hw.network.latency_s)),
                network_nics=net.get("network_nics", hw.network_nics))
        return dataclasses.replace(hw, device=with_efficiency(hw.device, **changes)) if changes else hw
    if net:
        raise DataError(f"'{hw.name}' is a device spec: fitting its network needs a node spec (--hw <node>).")
    return dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, **changes))


def _value(hw: DeviceSpec | NodeSpec, name: str) -> float:
    if name == "network_nics":
        return hw.nics
    if name in NETWORK_PARAMS:
        return float(getattr(hw.network, name[len("network_"):]))
    eff = device_of(hw).efficiency
    if name == "collective_p2p_fraction" and not eff.collective_p2p_fraction:
        return eff.collective_bus_fraction          # 0 means "as the bus fraction"
    if name == "collective_peer_latency_s" and not eff.collective_peer_latency_s:
        return eff.collective_hop_latency_s         # 0 means "as the hop latency"
    return float(getattr(eff, name))


# where a constant is 0 (off), the fit starts from a typical value instead (the A100 fit, cost/comm.py)
_STARTS = {"collective_local_copy": 0.3}


def device_of(hw: DeviceSpec | NodeSpec) -> DeviceSpec:
    return hw.device if isinstance(hw, NodeSpec) else hw


def in_split(key: str, share: float) -> bool:
    """Deterministic split: crc32 of ``key`` below ``share`` of 2^32."""
    return zlib.crc32(key.encode("utf-8")) < share * 2 ** 32


def in_training_split(m: Measurement, share: float) -> bool:
    """A measurement is in the training part when (line, kind, label) hashes below ``share``."""
    return in_split(f"{m.line}:{m.kind}:{m.label}", share)


@dataclass(frozen=True)
class CalibrationResult:
    base: str
    params: dict                     # field -> (before, after)
    before: dict                     # kind -> GroupStats on the held-back rows, and "overall"
    after: dict
    n_train: int
    n_test: int
    n_fit: int                       # training rows used by the fit (subsampled when large)
    efficiency: Efficiency
    network: LinkSpec | None = None  # a node's network link after the fit (None: not a node)

    @property
    def fits_network(self) -> bool:
        return any(n in NETWORK_PARAMS for n in self.params)

    def report(self) -> str:
        lines = [f"calibrated on {self.n_fit} of {self.n_train} training rows; "
                 f"checked on {self.n_test} held-back rows", "",
                 f"{'parameter':<32}{'before':>14}{'after':>14}"]
        for name, (b, a) in self.params.items():
            lines.append(f"{name:<32}{_fmt(b):>14}{_fmt(a):>14}")
        lines += ["", "held-back error (median / p90 |predicted/measured - 1|, bias):",
                  f"{'kind':<14}{'n':>7}{'before':>24}{'after':>24}"]
        for kind in self.before:
            b, a = self.before[kind], self.after[kind]
            lines.append(f"{kind:<14}{b.n:>7}{_stat(b):>24}{_stat(a):>24}")
        return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _stat(s: GroupStats) -> str:
    return f"{100 * s.median_ape:.1f}% / {100 * s.p90_ape:.1f}% / {100 * s.bias:+.1f}%"


def _predict_all(rows: Sequence[Measurement], hw) -> list[float | None]:
    from .validation.predict import predict_s

    out: list[float | None] = []
    for m in rows:
        try:
            out.append(predict_s(m, hw))
        except (ValueError, KeyError):
            out.append(None)
    return out


def _stats(rows: Sequence[Measurement], preds: Sequence[float | None]) -> dict:
    results = [RowResult(m.line, m.kind, m.source, m.label, m.measured_s, p)
               for m, p in zip(rows, preds) if p is not None and p > 0]
    by_kind: dict[str, list[RowResult]] = {}
    for r in results:
        by_kind.setdefault(r.kind, []).append(r)
    out = {k: group_stats(v) for k, v in sorted(by_kind.items())}
    if results:
        out["overall"] = group_stats(results)
    return out


def spans_nodes(m: Measurement) -> bool:
    """A collective whose ranks sit on more than one node."""
    return m.kind == "collective" and bool(m.ranks_per_node) and m.ranks_per_node < m.op.shape.get("ranks", 1)


def parameters_for(rows: Sequence[Measurement], hw: DeviceSpec | NodeSpec | None = None) -> list[str]:
    """The constants the rows' kinds exercise, and a node's network when collectives span nodes."""
    kinds = {m.kind for m in rows} | {m.timing for m in rows if m.timing != "kernel"}
    names: list[str] = []
    for kind in sorted(kinds):
        for name in PARAMS.get(kind, ()):
            if name not in names:
                names.append(name)
    if "gemm" in kinds and hw is not None and device_of(hw).efficiency.gemm_light_tile:
        names.append("gemm_light_k_step_s")          # the library's one-stage kernel (cost/ctas.py light_gemm)
    if any(m.kind == "copy" and not m.op.shape.get("pinned", 1.0) for m in rows):
        names.append("host_pageable_fraction")       # pageable copies: staged through a pinned buffer
    if any(m.kind == "collective" and m.op.name == "send_recv" and not spans_nodes(m) for m in rows):
        names.append("collective_p2p_fraction")      # a send/recv inside a node: one direct copy
    inside = [m for m in rows if m.kind == "collective" and m.op.name != "send_recv" and not spans_nodes(m)]
    if len({m.op.shape.get("ranks") for m in inside}) > 1:
        names.append("collective_local_copy")        # the own chunk's copy shows as ranks vary
    if len({m.op.shape.get("ranks") for m in inside if m.op.name == "all_to_all"}) > 1:
        names.append("collective_peer_latency_s")    # an all-to-all's cost per peer
    if isinstance(hw, NodeSpec) and hw.network is not None and any(spans_nodes(m) for m in rows):
        if all(spans_nodes(m) for m in rows if m.kind == "collective"):
            # no row inside a node pins the device's NCCL constants: fit the fabric alone
            names = [n for n in names if n not in PARAMS["collective"] + ("collective_p2p_fraction",)]
        names += [n for n in NETWORK_PARAMS if n != "network_nics"]
        # the NIC count shows only when the rows put different numbers of ranks on each node
        if len({m.ranks_per_node for m in rows if spans_nodes(m)}) > 1:
            names.append("network_nics")
    return names


def calibrate(rows: Sequence[Measurement], hw: DeviceSpec | NodeSpec, *, params: Sequence[str] | None = None,
              train_share: float = 0.7, max_fit_rows: int = 1500) -> CalibrationResult:
    """Fit ``params`` (default: those the rows' kinds exercise) on the training split of ``rows``."""
    import numpy as np
    from scipy.optimize import least_squares

    if not rows:
        raise DataError("no readable measurement rows to calibrate on.")
    train = [m for m in rows if in_training_split(m, train_share)]
    test = [m for m in rows if not in_training_split(m, train_share)]
    if len(train) < 5 or not test:
        raise DataError(f"too few rows to calibrate ({len(rows)}); need at least 10 with both splits non-empty.")
    names = list(params) if params else parameters_for(rows, hw)
    fields = Efficiency.__dataclass_fields__
    for name in names:
        if name in NETWORK_PARAMS:
            if not isinstance(hw, NodeSpec) or hw.network is None:
                raise DataError(f"'{name}' needs a node spec with a network link (--hw <node>).")
        elif name not in fields or name == "extra" or isinstance(fields[name].default, int):
            raise DataError(f"'{name}' is not a fittable efficiency constant (nor one of {', '.join(NETWORK_PARAMS)}).")
    # subsample the training rows deterministically, keeping every kind represented
    fit_rows = sorted(train, key=lambda m: zlib.crc32(f"{m.label}:{m.line}".encode()))
    if len(fit_rows) > max_fit_rows:
        per_kind: dict[str, list[Measurement]] = {}
        for m in fit_rows:
            per_kind.setdefault(m.kind, []).append(m)
        quota = max(1, max_fit_rows // len(per_kind))
        fit_rows = [m for ms in per_kind.values() for m in ms[:quota]]
    measured = np.array([m.measured_s for m in fit_rows])
    x0 = np.array([max(_value(hw, n) or _STARTS.get(n, 0.0), _FLOORS.get(n, 1e-9)) for n in names])

    def unpack(x) -> dict:
        return {n: float(v * s) for n, v, s in zip(names, x, x0)}

    def residuals(x):
        preds = _predict_all(fit_rows, with_efficiency(hw, **unpack(x)))
        return np.array([math.log(p / m) if p and p > 0 else 3.0 for p, m in zip(preds, measured)])

    lower = np.array([(_FLOORS.get(n, 1e-9) / s) if not n.endswith("fraction") else 0.05 / s for n, s in zip(names, x0)])
    upper = np.array([(1.0 / s) if n.endswith("fraction") else 50.0 for n, s in zip(names, x0)])
    if "network_nics" in names:      # from one NIC per node to one per device
        i = names.index("network_nics")
        lower[i], upper[i] = 1.0 / x0[i], hw.device_count / x0[i]
    start = np.clip(np.ones(len(names)), lower, upper)
    fit = least_squares(residuals, start, bounds=(lower, np.maximum(upper, lower * 1.0001)),
                        loss="soft_l1", f_scale=0.1, diff_step=0.01, max_nfev=60 * (len(names) + 1))
    best = unpack(fit.x)
    tuned = with_efficiency(hw, **best)
    before = _stats(test, _predict_all(test, hw))
    after = _stats(test, _predict_all(test, tuned))
    return CalibrationResult(base=getattr(hw, "name", "?"), params={n: (_value(hw, n), best[n]) for n in names},
                             before=before, after=after, n_train=len(train), n_test=len(test), n_fit=len(fit_rows),
                             efficiency=device_of(tuned).efficiency,
                             network=tuned.network if isinstance(tuned, NodeSpec) else None)


def calibrated_yaml(result: CalibrationResult, base_ref: str, name: str, measurements: str,
                    base: DeviceSpec) -> str:
    """A spec that ``extends:`` ``base_ref`` and overrides only the fitted ``efficiency:`` values."""
    import yaml

    eff = {}
    for field_name, (_, value) in result.params.items():
        if field_name in NETWORK_PARAMS:
            continue
        if field_name.endswith("_s"):
            eff[field_name[:-2]] = f"{value:.4g} s"
        elif field_name.endswith("_bytes"):
            eff[field_name[:-6]] = f"{value:.4g} B"
        else:
            eff[field_name] = float(f"{value:.4g}")
    doc = {"name": name, "version": 1, "kind": base.kind.value, "extends": base_ref,
           "description": f"{base.description}, efficiency calibrated on {measurements}",
           "source": f"simhw calibrate {measurements} (fit on {result.n_fit} rows; held-back error in the header)",
           "efficiency": eff}
    return _header(result, base_ref, measurements, "efficiency constants") + yaml.safe_dump(doc, sort_keys=False)


def calibrated_node_yaml(result: CalibrationResult, base_ref: str, device_ref: str, name: str,
                         measurements: str, base: NodeSpec) -> str:
    """A node spec that ``extends:`` ``base_ref``, runs the calibrated device ``device_ref`` (a path
    relative to this file) and, when the fit covered it, the fitted network link."""
    import yaml

    doc = {"name": name, "version": 1, "kind": "node", "extends": base_ref, "device": device_ref,
           "description": f"{base.description}, calibrated on {measurements}",
           "source": f"simhw calibrate {measurements} (fit on {result.n_fit} rows; held-back error in the header)"}
    if result.fits_network and result.network is not None:
        doc["links"] = {"network": {
            "kind": result.network.kind.value,
            "bandwidth": {"value": f"{result.network.bandwidth_bytes_per_s / 1e9:.4g} GB/s",
                          "source": f"F: simhw calibrate on the across-node collectives of {measurements}"},
            "latency": f"{result.network.latency_s * 1e6:.4g} us"}}
        if "network_nics" in result.params:
            doc["links"]["network"]["nics"] = float(f"{result.params['network_nics'][1]:.3g}")
    return _header(result, base_ref, measurements, "device and network constants") + yaml.safe_dump(doc, sort_keys=False)


def _header(result: CalibrationResult, base_ref: str, measurements: str, what: str) -> str:
    header = [f"# Generated by simhw calibrate: {what} fitted on measurements.",
              f"# base spec: {base_ref}; measurements: {measurements}",
              f"# training rows {result.n_train} (fit on {result.n_fit}), held back {result.n_test}.",
              "# held-back error before -> after (median / p90 / bias):"]
    for kind in result.before:
        b, a = result.before[kind], result.after[kind]
        header.append(f"#   {kind}: {_stat(b)} -> {_stat(a)}")
    return "\n".join(header) + "\n"
