"""Mesh links (spec/model.py LinkTopology): AMD's 8-GPU MI300X platform links each GPU directly to
the seven others, so a group of g GPUs moves data over g - 1 of its 7 Infinity Fabric links, where
a switch (NVSwitch) gives any group the full per-GPU bandwidth."""
from __future__ import annotations

import pytest

import simhw
from simhw.cli import main
from simhw.cost.comm import collective_time_s, pick_link
from simhw.spec.model import LinkTopology
from simhw.workload.graph import Collective, LinkScope


@pytest.fixture(scope="module")
def mesh():
    return simhw.load_hw("mi300x-8")


def test_a_group_gets_the_links_to_its_peers(mesh):
    link = mesh.intra_link
    assert link.topology is LinkTopology.MESH and link.peers == 7
    for g in (2, 4, 8):
        assert pick_link(mesh, LinkScope.INTRA, g).bandwidth_bytes_per_s == pytest.approx(
            link.bandwidth_bytes_per_s * (g - 1) / 7)
    # the device spec's own Infinity Fabric link is the same mesh
    dev = simhw.load_hw("mi300x")
    assert pick_link(dev, LinkScope.INTRA, 2).bandwidth_bytes_per_s == pytest.approx(448e9 / 7)
    # a switch gives every group all of it
    h100 = simhw.load_hw("dgx-h100")
    assert pick_link(h100, LinkScope.INTRA, 2) is h100.intra_link


def test_two_gpu_collectives_are_much_slower_in_a_mesh(mesh):
    big = 1e9

    def bus(hw, n):
        link = pick_link(hw, LinkScope.INTRA, n)
        return (n - 1) / n * big / collective_time_s(Collective.ALL_GATHER, big, n, link, hw.device)

    assert bus(mesh, 2) < 0.25 * bus(mesh, 8)                 # one link of seven, and the local copy
    h100 = simhw.load_hw("dgx-h100")
    assert bus(h100, 2) > 0.7 * bus(h100, 8)


def test_estimates_price_tensor_parallel_pairs_on_one_link(mesh):
    """A TP-2 all-reduce of a decode step runs on one of the seven links; TP 8 uses them all, as a
    switch of the same per-GPU bandwidth would."""
    import dataclasses

    from simhw import load_workload
    from simhw.cost.estimate import OpCoster
    from simhw.workload.transformer import build_graph

    switch = dataclasses.replace(mesh, intra_link=dataclasses.replace(mesh.intra_link, topology=LinkTopology.SWITCH))
    times = {}
    for tp in (2, 8):
        wl = load_workload("workloads/llama2-70b-decode.yaml", [f"devices={tp}", f"parallelism.tp={tp}"])
        ar = next(op for op in build_graph(wl, compact=True).ops if op.kind.value == "collective")
        times[tp] = [OpCoster(hw, wl).comm_time(ar) for hw in (mesh, switch)]
    assert times[2][0] > 2 * times[2][1]          # a decode step's all-reduce is partly latency
    assert times[8][0] == pytest.approx(times[8][1])


@pytest.mark.parametrize("body, message", [
    ("topology: ring", "topology: 'ring' is not a topology; allowed: switch, mesh"),
    ("topology: mesh", "links.intra.peers: a mesh link needs the number of devices"),
    ("topology: mesh, peers: 0", "links.intra.peers: expected a whole number"),
])
def test_bad_topology_is_a_clear_error(tmp_path, capsys, body, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"""name: bad-mesh
version: 1
kind: node
description: x
source: x
device: mi300x
device_count: 8
links:
  intra: {{kind: infinity_fabric, bandwidth: 448 GB/s, {body}}}
""")
    assert main(["hw", "show", str(spec)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
