"""A node with fewer NICs than devices (links.network.nics): the devices that send across nodes at
once share them. A DGX has one per GPU (the default); AWS p4d has 4 EFA NICs for 8 A100s."""
from __future__ import annotations

from dataclasses import replace

import pytest

import simhw
from simhw.calibrate import calibrate, parameters_for, with_efficiency
from simhw.cli import main
from simhw.cost.comm import collective_time_s, group_link
from simhw.cost.pipeline import stage_p2p_s
from simhw.errors import SpecError
from simhw.spec.load import load_hw
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import Collective

NODE = """\
name: test-node
version: 1
kind: node
source: test
device: a100
device_count: 8
links:
  intra: {kind: nvlink, bandwidth: 300 GB/s}
  network: {kind: network, bandwidth: 12.5 GB/s, latency: 5 us, nics: NICS}
"""


def _node(tmp_path, nics, name="node.yaml"):
    path = tmp_path / name
    path.write_text(NODE.replace("NICS", str(nics)))
    return load_hw(str(path))


@pytest.fixture(scope="module")
def dgx():
    return simhw.load_hw("dgx-a100")


def test_a_dgx_has_one_nic_per_gpu(dgx):
    assert dgx.network_nics == 0 and dgx.nics == 8 and dgx.nic_share(8) == 1.0


def test_nics_read_from_the_spec(tmp_path):
    node = _node(tmp_path, 4)
    assert node.nics == 4 and node.nic_share(8) == 0.5 and node.nic_share(2) == 1.0


@pytest.mark.parametrize("value", ["0", "-2", "four", "true", ".inf"])
def test_a_bad_nic_count_names_the_key(tmp_path, value):
    with pytest.raises(SpecError, match=r"node\.yaml.*links\.network\.nics: expected the node's number of NICs"):
        _node(tmp_path, value)


def test_bad_nic_count_exits_2_on_the_cli(tmp_path, capsys):
    path = tmp_path / "node.yaml"
    path.write_text(NODE.replace("NICS", "0"))
    assert main(["hw", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "links.network.nics" in err and "Traceback" not in err


def test_a_group_shares_the_nics_its_node_has(tmp_path):
    full, half = _node(tmp_path, 8, "full.yaml"), _node(tmp_path, 4, "half.yaml")
    nic = 12.5e9
    # 16 ranks, 8 per node: 8 NICs carry the ring, or 4 when the node has 4
    assert group_link(full, 16, 8).bandwidth_bytes_per_s == pytest.approx(8 * nic)
    assert group_link(half, 16, 8).bandwidth_bytes_per_s == pytest.approx(4 * nic)
    # 2 ranks per node fit the 4 NICs, unless every device of the node is sending at once
    assert group_link(half, 8, 2).bandwidth_bytes_per_s == pytest.approx(2 * nic)
    assert group_link(half, 8, 2, active_per_node=8).bandwidth_bytes_per_s == pytest.approx(nic)
    # an all-to-all leaves through each rank's share of a NIC
    assert group_link(full, 16, 8, Collective.ALL_TO_ALL).bandwidth_bytes_per_s == pytest.approx(nic)
    assert group_link(half, 16, 8, Collective.ALL_TO_ALL).bandwidth_bytes_per_s == pytest.approx(nic / 2)


def _train(tp):
    return workload_from_dict({"model": "llama2-7b", "mode": "train", "dtype": "bf16", "devices": 32, "seq_len": 4096,
                               "parallelism": {"tp": tp, "dp": 32 // tp}, "micro_batch": 1, "global_batch": 32 // tp},
                              "test")


@pytest.mark.parametrize("tp", [1, 8])
def test_data_parallel_groups_share_the_nics_in_an_estimate(dgx, tp):
    """Every device of a node reduces its gradients at the same time (with tp 8, each of the eight
    data-parallel groups has one rank per node): halving the NICs halves each rank's share."""
    from simhw.cost.estimate import OpCoster
    from simhw.workload.graph import OpKind, Phase
    from simhw.workload.transformer import build_graph

    wl = _train(tp)
    ops = [op for op in build_graph(wl).ops if op.kind is OpKind.COLLECTIVE and op.phase is Phase.OPTIMIZER]
    four = replace(dgx, network_nics=4.0)
    base = sum(OpCoster(dgx, wl).comm_time(op) for op in ops)
    same = sum(OpCoster(replace(dgx, network_nics=8.0), wl).comm_time(op) for op in ops)
    slow = sum(OpCoster(four, wl).comm_time(op) for op in ops)
    assert same == base
    assert 1.6 * base < slow < 2.05 * base       # the bandwidth term doubles; the latency terms do not
    assert simhw.estimate(wl, four).step_time_s >= simhw.estimate(wl, dgx).step_time_s


def test_pipeline_sends_across_nodes_share_the_nics(dgx):
    wl = workload_from_dict({"model": "llama2-7b", "mode": "train", "dtype": "bf16", "devices": 16, "seq_len": 4096,
                             "parallelism": {"tp": 8, "pp": 2}, "micro_batch": 1, "global_batch": 8}, "test")
    base, two = stage_p2p_s(wl, dgx, dgx.device), stage_p2p_s(wl, replace(dgx, network_nics=2.0), dgx.device)
    shard = 4096 * 4096 * 2 / 8
    link = dgx.network
    # each of a node's 8 devices sends its TP shard at once: 2 NICs give each a quarter of one
    quarter = replace(link, bandwidth_bytes_per_s=link.bandwidth_bytes_per_s / 4)
    send = collective_time_s(Collective.SEND_RECV, shard, 2, link, dgx.device)
    assert two - base == pytest.approx(collective_time_s(Collective.SEND_RECV, shard, 2, quarter, dgx.device) - send,
                                       rel=1e-9)
    assert two > base


HEAD = "kind,measured_s,op,bytes,ranks,ranks_per_node,dtype,label\n"
SIZES = [2 ** p for p in range(16, 28)]


def test_calibrate_recovers_a_nic_count(dgx):
    truth = with_efficiency(dgx, network_bandwidth_bytes_per_s=12e9, network_latency_s=10e-6, network_nics=3.0)
    shapes = [(n, g, b) for n, g in ((2, 1), (4, 2), (8, 4), (16, 8)) for b in SIZES]
    probe, _ = parse_lines((HEAD + "".join(f"collective,1,all_reduce,{b},{n},{g},bf16,x\n"
                                           for n, g, b in shapes)).splitlines(True))
    text = HEAD + "".join(f"collective,{predict_s(r, truth)},all_reduce,{b},{n},{g},bf16,r{i}\n"
                          for i, (r, (n, g, b)) in enumerate(zip(probe, shapes)))
    rows, bad = parse_lines(text.splitlines(True))
    assert not bad and "network_nics" in parameters_for(rows, dgx)
    one_layout = [m for m in rows if m.ranks_per_node == 8]
    assert "network_nics" not in parameters_for(one_layout, dgx)     # nothing in those rows pins it
    result = calibrate(rows, dgx, max_fit_rows=300)
    assert result.params["network_nics"][1] == pytest.approx(3.0, rel=0.1)
    assert result.params["network_bandwidth_bytes_per_s"][1] == pytest.approx(12e9, rel=0.1)
    assert result.after["collective"].median_ape < 0.03
