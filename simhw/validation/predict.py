"""simhw's prediction for one measurement row: roofline.op_cost, or comm.collective_time_s
(comm.engine_all_reduce_time_s for a serving engine's own all-reduce)."""
from __future__ import annotations

from ..cost.comm import collective_time_s, engine_all_reduce_time_s, group_link
from ..cost.power import PowerState, power_limited
from ..cost.roofline import op_cost
from ..spec.model import DeviceSpec, LinkKind, LinkSpec, NodeSpec
from ..workload.graph import Collective, OpKind
from .schema import Measurement

_BY_CODE = {i: c for i, c in enumerate(Collective)}


def device_of(hw: DeviceSpec | NodeSpec) -> DeviceSpec:
    return hw.device if isinstance(hw, NodeSpec) else hw


def collective_link(hw: DeviceSpec | NodeSpec, ranks: int, ranks_per_node: int,
                    kind: Collective | None = None) -> LinkSpec:
    """NVLink (the device's, or the node's intra link) inside a node; the node's network across
    nodes (ranks spread over more than one node, or more ranks than the node has devices), one NIC
    per rank on a node in parallel (comm.group_link)."""
    per_node = ranks_per_node or ranks
    node_size = hw.device_count if isinstance(hw, NodeSpec) else 8
    if per_node < ranks or ranks > node_size:
        network = hw.network if isinstance(hw, NodeSpec) else None
        if network is None:
            raise ValueError(f"{ranks} ranks over {max(1, ranks // per_node)} nodes need a network link; "
                             f"'{hw.name}' is a device spec: pass a node spec (--hw <node>)")
        return group_link(hw, ranks, min(per_node, node_size), kind)
    if isinstance(hw, NodeSpec) and hw.intra_link is not None:
        return hw.intra_link.for_group(ranks)
    device = device_of(hw)
    for kind in (LinkKind.NVLINK, LinkKind.INFINITY_FABRIC, LinkKind.C2C, LinkKind.PCIE):
        link = device.link(kind)
        if link is not None:
            return link.for_group(ranks)
    raise ValueError(f"'{hw.name}' has no device-to-device link to price a collective")


def host_link(hw: DeviceSpec | NodeSpec) -> LinkSpec:
    """The device-to-host link: the node's host link, else the device's PCIe (or C2C) link."""
    if isinstance(hw, NodeSpec) and hw.host_link is not None:
        return hw.host_link
    device = device_of(hw)
    for kind in (LinkKind.PCIE, LinkKind.C2C):
        link = device.link(kind)
        if link is not None:
            return link
    raise ValueError(f"'{hw.name}' has no host link to price a copy")


def predict_s(row: Measurement, hw: DeviceSpec | NodeSpec, power: PowerState = PowerState.BURST) -> float:
    """Predicted seconds for ``row`` on ``hw`` (ValueError when the spec cannot price it); a kernel
    runs in the row's power state, else in ``power`` (cost/power.py; burst: the die near idle
    temperature, as in a benchmark loop)."""
    device = device_of(hw)
    op = row.op
    if op.kind is OpKind.COPY and "direction" in op.shape:
        link = host_link(hw)
        eff = device.efficiency
        fraction = eff.host_copy_fraction * (1.0 if op.shape.get("pinned", 1.0) else eff.host_pageable_fraction)
        t = link.latency_s + op.shape["bytes"] / (link.bandwidth_bytes_per_s * fraction)
    elif op.kind in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
        s = op.shape
        ranks = int(s["ranks"])
        kind = _BY_CODE[int(s["collective"])]
        link = collective_link(hw, ranks, row.ranks_per_node, kind)
        per_node = row.ranks_per_node or ranks
        t = engine_all_reduce_time_s(s["bytes"], ranks, link, device, per_node) if s.get("custom") else \
            collective_time_s(kind, s["bytes"], ranks, link, device, ranks_per_node=per_node)
    else:
        cost = op_cost(op, device)
        t = power_limited(cost, device, row.power or power, held_s=row.held_s).time_s
    if row.timing == "wall":
        t += device.efficiency.host_launch_gap_s
    elif row.timing == "compiled":
        t += device.efficiency.host_compiled_call_gap_s
    return t
