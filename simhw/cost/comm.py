"""Collectives over links: ring and tree all-reduce, all-gather, reduce-scatter, all-to-all, p2p.

NCCL's own cost model (src/graph/tuning.cc; nccl-tests PERFORMANCE.md for the bus-bandwidth
convention), with its three protocols, is an alpha-beta model per (algorithm, protocol):
``time = base + steps x hop x protocol latency factor + bus bytes / (link bandwidth x
collective_bus_fraction x protocol fraction)``; NCCL runs the fastest pair, so does simhw.
- LL (low latency): flag-per-8-byte stores, half the bandwidth (collective_ll_fraction), the
  shortest step latency (collective_hop_latency);
- LL128: 120 of 128 bytes (collective_ll128_fraction), collective_ll128_latency_factor x hop;
- Simple: full bandwidth, collective_simple_latency_factor x hop.
LL128 and Simple reach their bandwidth only once every channel's pipeline is full: their
bandwidth is derated by ``bytes / (bytes + collective_ramp_bytes)``. A send/recv has one hop and
no pipeline to fill, so it is not derated, and inside a node, as one direct copy (no ring steps,
no reduction), it reaches collective_p2p_fraction of the link; across nodes the NIC bounds it as
it bounds a ring (vidur's DGX-A100 send_recv rows inside a node: about 10 us plus the bytes at
230-280 GB/s of NVLink's 300 from 400 KB up, where a ring all-reduce is still far from its bus
bandwidth).
Steps and bus bytes (Thakur, Rabenseifner, Gropp, IJHPCA 2005; bytes = the full buffer):
- ring all-reduce: 2(n-1) steps, 2(n-1)/n x bytes; tree all-reduce: 2 x bytes over a binary
  tree across nodes (2 log2(nodes) steps) and a chain inside each node (2 (ranks per node - 1));
- all-gather, reduce-scatter: n-1 steps, (n-1)/n x bytes;
- all-to-all: one send per peer, n-1 steps, (n-1)/n x bytes; across nodes the (n - g)/n bound for
  other nodes (g ranks per node) leaves through each rank's own NIC;
- send/recv: 1 step, bytes;
- the rank's own chunk (bytes / n): NCCL's out-of-place collectives (nccl-tests', and the
  frameworks') copy it from the input to the output buffer with the same channels that feed the
  links, so inside a node it adds collective_local_copy x bytes / n at the ring's bandwidth: the
  bus bandwidth grows with n as (n - 1) / (n - 1 + copy) (all-gather, reduce-scatter, all-to-all)
  or 2(n - 1) / (2(n - 1) + copy) (all-reduce). aiconfigurator's A100 nccl-tests rows reach about
  0.75-0.8 of their 8-GPU bus bandwidth at 2 GPUs for all-gather, reduce-scatter and all-to-all and
  0.87 for all-reduce; OpenXLA's H100 and B200 tables show the same (validate/data/published);
- NVLink SHARP all-reduce inside a node (NVSwitch gen 3 and later, collective_nvls_fraction > 0):
  the switch reduces and multicasts, the buffer crosses each GPU's links about once. NCCL's
  maintainers quote ~275 GB/s algorithm bandwidth (busBW ~480) on 8 H100s against ~370 GB/s ring
  busBW, and no gain at 2-4 GPUs, where the ring is as fast (NVIDIA/nccl-tests#212, NVIDIA/nccl#1455).
``base`` is collective_latency_s (kernel launch and setup); a network link adds its own latency
to every step. An all-to-all posts its n - 1 sends at once (NCCL groups them), so where a ring's
dependent steps cross slower switches (collective_hop_latency; the GB200 rack's switch trays) its
steps cost collective_peer_latency each inside the domain (0: the hop latency): OpenXLA's GB200
table has all-to-alls of a few KB at 12 us over 8-18 GPUs where its all-gathers take 18-29 us.
Across nodes every rank drives its own NIC (the node spec's network bandwidth is per NIC, one per
device unless ``links.network.nics`` says otherwise, as in a DGX): NCCL gives each NIC its own
channels, so a group with g ranks on each node moves g x the NIC rate between nodes, capped by the
intra-node link its rings also cross (:func:`group_link`; vidur's DGX-A100 all-reduce rows scale
1 : 2 : 3.8 with 1, 2, 4 GPUs per node). A node with fewer NICs than devices shares them: the
devices that send across nodes at once (every device, when all data-parallel groups reduce
together) each get nics / active of a NIC (AWS p4d: 4 EFA NICs for 8 A100s).
"""
from __future__ import annotations

import math
from dataclasses import replace

from ..spec.model import DeviceSpec, LinkKind, LinkSpec, NodeSpec
from ..workload.graph import Collective, LinkScope


def _plan(kind: Collective, n: int, nodes: int) -> list[tuple[float, float]]:
    """(steps, bus-bytes factor) of each algorithm NCCL may use for ``kind`` over ``n`` ranks on
    ``nodes`` nodes. NCCL's tree is a binary tree across nodes and a chain inside each node."""
    if kind is Collective.ALL_REDUCE:
        per_node = max(1, n // max(nodes, 1))
        tree_steps = 2.0 * (math.ceil(math.log2(nodes)) if nodes > 1 else 0) + 2.0 * (per_node - 1)
        return [(2.0 * (n - 1), 2.0 * (n - 1) / n), (max(tree_steps, 1.0), 2.0)]
    if kind is Collective.ALL_TO_ALL and nodes > 1:   # on the NIC: the share bound for other nodes
        return [(float(n - 1), (n - max(1, n // nodes)) / n)]
    if kind in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL):
        return [(float(n - 1), (n - 1) / n)]
    return [(1.0, 1.0)]


def collective_time_s(kind: Collective, nbytes: float, ranks: int, link: LinkSpec, device: DeviceSpec,
                      ranks_per_node: int | None = None) -> float:
    """Seconds for one collective of ``nbytes`` (the full buffer) over ``ranks`` ranks on ``link``.

    ``ranks_per_node`` (default: all ranks in one node, or one per node on a network link) sets
    the depth of NCCL's tree."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    eff = device.efficiency
    # a send/recv inside a node is one direct copy; across nodes the NIC bounds it as it bounds a ring
    p2p = kind is Collective.SEND_RECV and eff.collective_p2p_fraction > 0 and link.kind is not LinkKind.NETWORK
    bw = link.bandwidth_bytes_per_s * (eff.collective_p2p_fraction if p2p else eff.collective_bus_fraction)
    hop = eff.collective_hop_latency_s + (link.latency_s if link.kind is LinkKind.NETWORK else 0.0)
    if kind is Collective.ALL_TO_ALL and eff.collective_peer_latency_s > 0 and link.kind is not LinkKind.NETWORK:
        hop = eff.collective_peer_latency_s     # its sends are posted at once: a cost per peer, not a chain of hops
    # channels' pipeline not yet full; a send/recv is one hop with no pipeline to fill
    ramp = 1.0 if kind is Collective.SEND_RECV else nbytes / (nbytes + eff.collective_ramp_bytes)
    protocols = ((1.0, eff.collective_ll_fraction),          # LL uses few, small chunks: no ramp
                 (eff.collective_ll128_latency_factor, eff.collective_ll128_fraction * ramp),
                 (eff.collective_simple_latency_factor, ramp))
    best = math.inf
    if ranks_per_node is None:
        ranks_per_node = 1 if link.kind is LinkKind.NETWORK else ranks
    nodes = max(1, math.ceil(ranks / max(ranks_per_node, 1)))
    # out-of-place: each rank's own chunk is also copied locally by the same channels (not on a NIC)
    own = eff.collective_local_copy / ranks if kind is not Collective.SEND_RECV and link.kind is not LinkKind.NETWORK else 0.0
    for steps, factor in _plan(kind, ranks, nodes):
        factor += own
        for lat_factor, fraction in protocols:
            t = eff.collective_latency_s + steps * hop * lat_factor + factor * nbytes / (bw * fraction)
            best = min(best, t)
    if kind is Collective.ALL_REDUCE and nodes == 1 and link.kind is LinkKind.NVLINK and eff.collective_nvls_fraction > 0:
        # NVLink SHARP (NVSwitch gen 3+): the switch reduces and multicasts, so each GPU moves the
        # buffer about once, at collective_nvls_fraction of the link (one reduce and one multicast step)
        nvls = link.bandwidth_bytes_per_s * eff.collective_nvls_fraction * ramp
        best = min(best, eff.collective_latency_s + 2 * hop * eff.collective_simple_latency_factor + nbytes / nvls)
    return best


# vLLM csrc/custom_all_reduce.cuh (allreduce): two GPUs always run the one-shot kernel; with every
# pair of GPUs on NVLink, up to 4 GPUs below 512 KiB and up to 8 below 256 KiB do too (P)
_ONE_SHOT_BELOW = ((2, math.inf), (4, 512 * 1024), (8, 256 * 1024))


def custom_all_reduce_time_s(nbytes: float, ranks: int, link: LinkSpec, device: DeviceSpec) -> float | None:
    """Seconds for a serving engine's own NVLink all-reduce of ``nbytes`` over ``ranks`` GPUs of one
    node (vLLM's custom_all_reduce, in CUDA graphs), or None where the engine hands it to NCCL: no
    such kernel in the spec (custom_ar_barrier 0), not an NVLink group, more than 8 GPUs, or a
    message of custom_ar_max_bytes or more.

    Each GPU reads its peers' buffers over NVLink with its SMs' loads, no ring and no channels:
    the one-shot kernel reads all n - 1 peers' whole buffers and reduces them, n - 1 x bytes in;
    the two-shot kernel reduces its 1 / n share from the peers (a reduce-scatter) and then reads
    the others' reduced shares (an all-gather), 2 (n - 1) / n x bytes in. The loads reach
    custom_ar_fraction of the link's bandwidth, and each cross-GPU barrier (a flag written into
    every peer's signal buffer, then awaited) exposes custom_ar_barrier: one for the one-shot
    kernel (its closing barrier finds the peers done with the same reads), three for the two-shot
    (start, between the two halves, end). Plus one launch. Fitted on aiconfigurator's A100 rows of
    vLLM 0.14's graph-mode custom all-reduce (validate/REPORT.md)."""
    eff = device.efficiency
    if (eff.custom_ar_barrier_s <= 0 or eff.custom_ar_fraction <= 0 or link.kind is not LinkKind.NVLINK
            or not 2 <= ranks <= 8 or nbytes >= eff.custom_ar_max_bytes):
        return None
    one_shot = any(ranks <= n and nbytes < below for n, below in _ONE_SHOT_BELOW)
    barriers, moved = (1, (ranks - 1) * nbytes) if one_shot else (3, 2.0 * (ranks - 1) / ranks * nbytes)
    return eff.launch_s + barriers * eff.custom_ar_barrier_s + moved / (link.bandwidth_bytes_per_s * eff.custom_ar_fraction)


def engine_all_reduce_time_s(nbytes: float, ranks: int, link: LinkSpec, device: DeviceSpec,
                             ranks_per_node: int | None = None) -> float:
    """Seconds for an all-reduce of a serving engine that has its own kernel: custom_all_reduce_time_s
    where the engine runs it, else NCCL's (collective_time_s), as the engine hands the message over."""
    t = custom_all_reduce_time_s(nbytes, ranks, link, device)
    return t if t is not None else collective_time_s(Collective.ALL_REDUCE, nbytes, ranks, link, device, ranks_per_node)


def pick_link(hw: DeviceSpec | NodeSpec, scope: LinkScope, group: int) -> LinkSpec:
    """The link a group of ``group`` ranks uses: NVLink inside a node, the network across nodes."""
    if isinstance(hw, NodeSpec):
        intra = hw.intra_link or hw.host_link
        if scope is LinkScope.INTRA or group <= hw.device_count:
            if intra is not None:
                return intra.for_group(group)
        if hw.network is not None:
            return hw.network
        return intra
    for kind in (LinkKind.NVLINK, LinkKind.INFINITY_FABRIC, LinkKind.C2C, LinkKind.PCIE):
        link = hw.link(kind)
        if link is not None:
            return link.for_group(group)
    return LinkSpec("none", LinkKind.PCIE, 16e9)


def group_link(hw: DeviceSpec | NodeSpec, ranks: int, ranks_per_node: int,
               kind: Collective | None = None, active_per_node: int | None = None) -> LinkSpec:
    """The link a collective of ``ranks`` ranks, ``ranks_per_node`` of them on each node, runs on:
    the intra-node link when the group fits in one node, else the network with ``ranks_per_node``
    NICs in parallel, capped by the intra-node link (module docstring). An all-to-all sends each
    rank's share for other nodes through that rank's own NIC: one NIC, no aggregation.
    ``active_per_node``: the devices of a node sending across nodes at the same time (default:
    this group's), which share the node's NICs when it has fewer (NodeSpec.nic_share)."""
    per_node = max(1, min(ranks_per_node, ranks))
    if not isinstance(hw, NodeSpec) or hw.network is None or per_node >= ranks:
        return pick_link(hw, LinkScope.INTRA if per_node >= ranks else LinkScope.INTER, ranks)
    net = hw.network
    share = hw.nic_share(active_per_node or per_node)
    nic = net.bandwidth_bytes_per_s * share
    if kind is Collective.ALL_TO_ALL:
        return net if share == 1.0 else replace(net, bandwidth_bytes_per_s=nic)
    bw = nic * per_node
    if hw.intra_link is not None:
        bw = min(bw, hw.intra_link.for_group(per_node).bandwidth_bytes_per_s)
    return replace(net, bandwidth_bytes_per_s=max(bw, nic))


def network_link(hw: NodeSpec, active_per_node: int) -> LinkSpec:
    """One device's share of the network when ``active_per_node`` devices of each node send across
    nodes at once (a pipeline's stage-boundary sends: each sends through its NIC's share)."""
    return replace(hw.network, bandwidth_bytes_per_s=hw.network.bandwidth_bytes_per_s * hw.nic_share(active_per_node))


def _host_link(hw: DeviceSpec | NodeSpec):
    """The node's host link, else the device's PCIe link, else its chip-to-chip one (a GB200's)."""
    return hw.host_link if isinstance(hw, NodeSpec) else hw.link(LinkKind.PCIE) or hw.link(LinkKind.C2C)


def host_link_bytes_per_s(hw: DeviceSpec | NodeSpec) -> float:
    """Achievable device<->host copy rate, per direction per device: the node's host link (or the
    device's PCIe link) times the spec's pinned-copy efficiency ``host_copy_fraction``."""
    link = _host_link(hw)
    device = hw.device if isinstance(hw, NodeSpec) else hw
    bw = link.bandwidth_bytes_per_s if link is not None else 16e9
    return bw * device.efficiency.host_copy_fraction


def host_link_j_per_byte(hw: DeviceSpec | NodeSpec) -> float:
    """Energy of one byte over the device<->host link (0 where the spec gives none)."""
    link = _host_link(hw)
    return link.energy_j_per_byte if link is not None else 0.0
