"""Collectives (simhw/cost/comm.py): the alpha-beta model and the links groups run on."""
from __future__ import annotations

import pytest

import simhw
from simhw.cost.comm import collective_time_s, group_link, pick_link
from simhw.workload.graph import Collective, LinkScope


@pytest.fixture(scope="module")
def node():
    return simhw.load_hw("dgx-a100")


def test_large_ring_all_reduce_runs_at_the_bus_bandwidth(node):
    link = pick_link(node, LinkScope.INTRA, 8)
    eff = node.device.efficiency
    nbytes = 4e9
    t = collective_time_s(Collective.ALL_REDUCE, nbytes, 8, link, node.device)
    bus = 2 * 7 / 8 * nbytes / t
    # within a few per cent of link x bus fraction x the local copy's share (the ramp and latency
    # are negligible at 4 GB): 14 ring steps of the buffer's eighth plus the copy of the rank's own
    copy = 14 / (14 + eff.collective_local_copy)
    assert bus == pytest.approx(link.bandwidth_bytes_per_s * eff.collective_bus_fraction * copy, rel=0.02)


@pytest.mark.parametrize("kind, steps", [(Collective.ALL_GATHER, 1), (Collective.REDUCE_SCATTER, 1),
                                         (Collective.ALL_TO_ALL, 1), (Collective.ALL_REDUCE, 2)])
def test_the_local_copy_lowers_the_bus_bandwidth_of_few_ranks(node, kind, steps):
    """The rank's own chunk, copied out of place, costs collective_local_copy ring steps of bytes / n:
    the bus bandwidth at n ranks is (steps (n - 1)) / (steps (n - 1) + copy) of the link's share, so
    2 GPUs reach less of it than 8 (aiconfigurator's A100 nccl-tests rows, OpenXLA's H100 / B200)."""
    link = pick_link(node, LinkScope.INTRA, 8)
    eff = node.device.efficiency
    assert eff.collective_local_copy > 0
    nbytes = 4e9

    def bus(n):
        return steps * (n - 1) / n * nbytes / collective_time_s(kind, nbytes, n, link, node.device)

    for n in (2, 8):
        share = steps * (n - 1) / (steps * (n - 1) + eff.collective_local_copy)
        assert bus(n) == pytest.approx(link.bandwidth_bytes_per_s * eff.collective_bus_fraction * share, rel=0.02)
    assert bus(2) < 0.9 * bus(8) if steps == 1 else bus(2) < bus(8)
    # a send/recv has no own chunk to copy, and across nodes the copy is not on the NIC
    assert collective_time_s(Collective.SEND_RECV, nbytes, 2, link, node.device) == pytest.approx(
        eff.collective_latency_s + nbytes / (link.bandwidth_bytes_per_s * eff.collective_p2p_fraction), rel=0.01)


def test_small_messages_are_latency_bound_and_grow_with_ranks(node):
    link = pick_link(node, LinkScope.INTRA, 8)
    t2 = collective_time_s(Collective.ALL_REDUCE, 1024, 2, link, node.device)
    t8 = collective_time_s(Collective.ALL_REDUCE, 1024, 8, link, node.device)
    assert node.device.efficiency.collective_latency_s < t2 < t8 < 50e-6
    assert collective_time_s(Collective.ALL_REDUCE, 1024, 1, link, node.device) == 0.0


def test_group_link_inside_one_node_is_nvlink(node):
    assert group_link(node, 8, 8) is node.intra_link
    assert group_link(node, 4, 8) is node.intra_link


def test_group_link_across_nodes_drives_one_nic_per_member(node):
    nic = node.network.bandwidth_bytes_per_s
    assert group_link(node, 8, 1).bandwidth_bytes_per_s == pytest.approx(nic)          # one rank per node
    assert group_link(node, 8, 2).bandwidth_bytes_per_s == pytest.approx(2 * nic)
    assert group_link(node, 16, 4).bandwidth_bytes_per_s == pytest.approx(4 * nic)
    eight = group_link(node, 16, 8)                                                     # 8 x 25 GB/s, under NVLink
    assert eight.bandwidth_bytes_per_s == pytest.approx(min(8 * nic, node.intra_link.bandwidth_bytes_per_s))
    assert eight.latency_s == node.network.latency_s


def test_group_link_is_capped_by_the_intra_node_link():
    h100 = simhw.load_hw("dgx-h100")     # 8 x 50 GB/s NICs = 400 GB/s, NVLink 450 GB/s per direction
    link = group_link(h100, 32, 8)
    assert link.bandwidth_bytes_per_s <= h100.intra_link.bandwidth_bytes_per_s
    assert link.bandwidth_bytes_per_s == pytest.approx(min(8 * h100.network.bandwidth_bytes_per_s,
                                                           h100.intra_link.bandwidth_bytes_per_s))


def _dp_reduction_s(tp: int) -> float:
    """Seconds of the gradient reduction of Llama-2-7B trained on 16 A100s of two DGX nodes."""
    from simhw.cost.estimate import OpCoster
    from simhw.workload.from_yaml import workload_from_dict
    from simhw.workload.graph import OpKind, Phase
    from simhw.workload.transformer import build_graph

    wl = workload_from_dict({"model": "llama2-7b", "mode": "train", "dtype": "bf16", "devices": 16, "seq_len": 4096,
                             "parallelism": {"tp": tp, "dp": 16 // tp}, "micro_batch": 1,
                             "global_batch": 16 // tp}, "test")
    coster = OpCoster(simhw.load_hw("dgx-a100"), wl)
    ops = [op for op in build_graph(wl).ops if op.kind is OpKind.COLLECTIVE and op.phase is Phase.OPTIMIZER]
    assert ops, "a data-parallel step has a gradient reduction"
    return sum(coster.comm_time(op) * op.count for op in ops)


def test_data_parallel_across_nodes_uses_every_nic(node):
    """16-way data parallelism over two DGX A100s (8 ranks per node) moves gradients over 8 NICs per
    node: far faster than one NIC, never faster than NVLink. With TP 8 the 2-way data-parallel
    group has one rank per node, so each ring has one NIC (and 1/8 of the gradients)."""
    grad_bytes = 4 * 6.7e9              # Llama-2-7B's gradients, reduced in fp32 as Megatron (fused) does for bf16
    bus = node.device.efficiency.collective_bus_fraction
    t16 = _dp_reduction_s(1)
    assert t16 < 2 * 15 / 16 * grad_bytes / (node.network.bandwidth_bytes_per_s * bus) / 4
    assert t16 > 2 * 15 / 16 * grad_bytes / node.intra_link.bandwidth_bytes_per_s
    t2 = _dp_reduction_s(8)
    assert t2 == pytest.approx(grad_bytes / 8 / (node.network.bandwidth_bytes_per_s * bus), rel=0.1)


def test_all_to_all_across_nodes_leaves_through_each_ranks_own_nic(node):
    """16 ranks on two nodes: each sends the half of its buffer bound for the other node through its
    own NIC (no aggregation: every NIC carries its own rank's traffic)."""
    nbytes = 2e9
    link = group_link(node, 16, 8, Collective.ALL_TO_ALL)
    assert link is node.network
    t = collective_time_s(Collective.ALL_TO_ALL, nbytes, 16, link, node.device, ranks_per_node=8)
    bw = node.network.bandwidth_bytes_per_s * node.device.efficiency.collective_bus_fraction
    assert t == pytest.approx(8 / 16 * nbytes / bw, rel=0.05)
    ring = collective_time_s(Collective.ALL_GATHER, nbytes, 16, group_link(node, 16, 8), node.device,
                             ranks_per_node=8)
    assert ring < t                  # an all-gather's rings use all eight NICs of a node


def test_nvlink_sharp_all_reduce_on_hopper():
    """NVLink SHARP (NVSwitch gen 3): ~480 GB/s busBW for a large all-reduce on 8 H100s (NCCL's
    maintainers, NVIDIA/nccl-tests#212); the ring is no slower at 2 GPUs; A100's switch cannot reduce."""
    h100 = simhw.load_hw("dgx-h100")
    link = pick_link(h100, LinkScope.INTRA, 8)
    nbytes = 4e9

    def busbw(hw, n, kind=Collective.ALL_REDUCE):
        t = collective_time_s(kind, nbytes, n, pick_link(hw, LinkScope.INTRA, n), hw.device)
        return (2 if kind is Collective.ALL_REDUCE else 1) * (n - 1) / n * nbytes / t

    assert busbw(h100, 8) == pytest.approx(480e9, rel=0.05)
    eff = h100.device.efficiency
    ring2 = (2 + eff.collective_local_copy) / 2 * nbytes / (link.bandwidth_bytes_per_s * eff.collective_bus_fraction)
    assert busbw(h100, 2) == pytest.approx(1 * nbytes / ring2, rel=0.02)        # the ring wins at 2
    assert busbw(h100, 8, Collective.ALL_GATHER) < 0.8 * busbw(h100, 8)         # only all-reduce is reduced in the switch
    a100 = simhw.load_hw("dgx-a100")
    assert a100.device.efficiency.collective_nvls_fraction == 0.0
    assert busbw(a100, 8) < 1.05 * a100.intra_link.bandwidth_bytes_per_s * a100.device.efficiency.collective_bus_fraction


def test_send_recv_has_no_pipeline_ramp():
    """A point-to-point copy is one hop: a few MB already move near the link's bus fraction, while
    a ring all-reduce of the same buffer is still ramping (module docstring)."""
    from simhw.spec.load import load_hw
    from simhw.cost.comm import collective_time_s
    from simhw.workload.graph import Collective
    node = load_hw("dgx-a100")
    dev, link = node.device, node.intra_link
    eff = dev.efficiency
    nbytes = 4e6
    t = collective_time_s(Collective.SEND_RECV, nbytes, 2, link, dev)
    wire = nbytes / (link.bandwidth_bytes_per_s * eff.collective_p2p_fraction)
    assert eff.collective_p2p_fraction > eff.collective_bus_fraction   # one copy, no ring steps
    assert wire < t < wire + eff.collective_latency_s + 5 * eff.collective_hop_latency_s
    ar = collective_time_s(Collective.ALL_REDUCE, nbytes, 2, link, dev)
    assert ar > wire * (nbytes + eff.collective_ramp_bytes) / nbytes


def test_send_recv_is_a_direct_copy_inside_a_node_and_nic_bound_across_nodes():
    """Inside a node a send/recv reaches collective_p2p_fraction of NVLink; across nodes the NIC
    bounds it at the same fraction as a ring (module docstring)."""
    from simhw.cost.comm import collective_time_s
    from simhw.spec.load import load_hw
    from simhw.workload.graph import Collective
    node = load_hw("dgx-a100")
    dev, eff = node.device, node.device.efficiency
    nbytes = 4e9                    # latency is a negligible part
    inside = collective_time_s(Collective.SEND_RECV, nbytes, 2, node.intra_link, dev)
    assert nbytes / inside == pytest.approx(node.intra_link.bandwidth_bytes_per_s * eff.collective_p2p_fraction, rel=0.01)
    across = collective_time_s(Collective.SEND_RECV, nbytes, 2, node.network, dev)
    assert nbytes / across == pytest.approx(node.network.bandwidth_bytes_per_s * eff.collective_bus_fraction, rel=0.01)


def test_custom_all_reduce_one_shot_two_shot_and_hand_off_to_nccl(node):
    """vLLM's own NVLink all-reduce (comm.custom_all_reduce_time_s): one launch, one barrier and
    n - 1 whole buffers read by the one-shot kernel; three barriers and 2 (n - 1) / n of the buffer
    by the two-shot kernel (above 512 KiB on 4 GPUs, 256 KiB on 8, never on 2); None from
    custom_ar_max_bytes on (vLLM hands the message to NCCL), on a network link, or where the spec
    has no such kernel."""
    from dataclasses import replace

    from simhw.cost.comm import custom_all_reduce_time_s

    dev = node.device
    eff = dev.efficiency
    link = pick_link(node, LinkScope.INTRA, 8)
    bw = link.bandwidth_bytes_per_s * eff.custom_ar_fraction

    def expected(barriers, moved):
        return eff.launch_s + barriers * eff.custom_ar_barrier_s + moved / bw

    assert custom_all_reduce_time_s(4096, 8, link, dev) == pytest.approx(expected(1, 7 * 4096))
    assert custom_all_reduce_time_s(4 << 20, 2, link, dev) == pytest.approx(expected(1, 4 << 20))
    assert custom_all_reduce_time_s(256 << 10, 4, link, dev) == pytest.approx(expected(1, 3 * (256 << 10)))
    assert custom_all_reduce_time_s(256 << 10, 8, link, dev) == pytest.approx(expected(3, 1.75 * (256 << 10)))
    assert custom_all_reduce_time_s(1 << 20, 4, link, dev) == pytest.approx(expected(3, 1.5 * (1 << 20)))
    # small messages: far below NCCL's launch, setup and ring steps
    assert custom_all_reduce_time_s(4096, 8, link, dev) < 0.5 * collective_time_s(Collective.ALL_REDUCE, 4096, 8,
                                                                                     link, dev)
    assert custom_all_reduce_time_s(8 << 20, 8, link, dev) is None
    assert custom_all_reduce_time_s(4096, 16, link, dev) is None
    assert custom_all_reduce_time_s(4096, 8, node.network, dev) is None
    plain = replace(dev, efficiency=replace(eff, custom_ar_barrier_s=0.0))
    assert custom_all_reduce_time_s(4096, 8, link, plain) is None
