"""Collectives over links: ring and tree all-reduce, all-gather, reduce-scatter, all-to-all, p2p.

Alpha-beta model (Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication
Operations in MPICH", IJHPCA 2005; NCCL's bus-bandwidth convention, nccl-tests PERFORMANCE.md):
- ring all-reduce: 2(n-1) steps of bytes/n: ``2(n-1)·alpha + 2(n-1)/n · bytes / bw``
- all-gather, reduce-scatter: ``(n-1)·alpha + (n-1)/n · bytes / bw`` (bytes = the full buffer)
- tree all-reduce (double binary tree): ``2·log2(n)·alpha + 2 · bytes / bw`` (pipelined)
- all-to-all: ``(n-1)·alpha + (n-1)/n · bytes / bw``; send/recv: ``alpha + bytes / bw``
The achievable bandwidth is ``link bandwidth x collective_bus_fraction``, derated for small
messages by ``bytes / (bytes + collective_ramp_bytes)``; alpha is ``collective_latency_s`` plus
the link's own latency. NCCL picks the faster of ring and tree; so does simhw.
"""
from __future__ import annotations

import math

from ..spec.model import DeviceSpec, LinkKind, LinkSpec, NodeSpec
from ..workload.graph import Collective, LinkScope


def collective_time_s(kind: Collective, nbytes: float, ranks: int, link: LinkSpec, device: DeviceSpec) -> float:
    """Seconds for one collective of ``nbytes`` (the full buffer) over ``ranks`` ranks on ``link``."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    eff = device.efficiency
    bw = link.bandwidth_bytes_per_s * eff.collective_bus_fraction * nbytes / (nbytes + eff.collective_ramp_bytes)
    alpha = eff.collective_latency_s + link.latency_s
    n = ranks
    if kind is Collective.ALL_REDUCE:
        ring = 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bw
        tree = 2 * math.log2(n) * alpha + 2 * nbytes / bw
        return min(ring, tree)
    if kind in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL):
        return (n - 1) * alpha + (n - 1) / n * nbytes / bw
    return alpha + nbytes / bw


def pick_link(hw: DeviceSpec | NodeSpec, scope: LinkScope, group: int) -> LinkSpec:
    """The link a group of ``group`` ranks uses: NVLink inside a node, the network across nodes."""
    if isinstance(hw, NodeSpec):
        intra = hw.intra_link or hw.host_link
        if scope is LinkScope.INTRA or group <= hw.device_count:
            if intra is not None:
                return intra
        if hw.network is not None:
            return hw.network
        return intra
    for kind in (LinkKind.NVLINK, LinkKind.INFINITY_FABRIC, LinkKind.C2C, LinkKind.PCIE):
        link = hw.link(kind)
        if link is not None:
            return link
    return LinkSpec("none", LinkKind.PCIE, 16e9)
