"""simhw calibrate on a node: fitting the cluster's network from collectives across nodes."""
from __future__ import annotations

import pytest

import simhw
from simhw.calibrate import NETWORK_PARAMS, PARAMS, calibrate, parameters_for, with_efficiency
from simhw.cli import main
from simhw.validation import read_measurements
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines

HEAD = "kind,measured_s,op,bytes,ranks,ranks_per_node,dtype,label\n"
LAYOUTS = ((2, 1), (4, 2), (8, 4), (16, 8))
SIZES = [2 ** p for p in range(14, 27)]


def _rows(truth, layouts=LAYOUTS, inside=False):
    shapes = [(n, g, b) for n, g in layouts for b in SIZES]
    if inside:
        shapes += [(n, n, b) for n in (2, 4, 8) for b in SIZES]
    text = HEAD + "".join(f"collective,1,all_reduce,{b},{n},{g},bf16,x\n" for n, g, b in shapes)
    rows, bad = parse_lines(text.splitlines(True))
    assert not bad
    return HEAD + "".join(f"collective,{predict_s(r, truth)},all_reduce,{b},{n},{g},bf16,r{i}\n"
                          for i, (r, (n, g, b)) in enumerate(zip(rows, shapes)))


@pytest.fixture(scope="module")
def node():
    return simhw.load_hw("dgx-a100")


def test_network_parameters_join_only_for_rows_across_nodes(node, tmp_path):
    truth = with_efficiency(node, network_bandwidth_bytes_per_s=10e9, network_latency_s=20e-6)
    across, _ = parse_lines(_rows(truth).splitlines(True))
    mixed, _ = parse_lines(_rows(truth, inside=True).splitlines(True))
    assert parameters_for(across, node) == list(NETWORK_PARAMS)          # the fabric alone
    assert parameters_for(mixed, node) == (list(PARAMS["collective"]) + ["collective_local_copy"]
                                           + list(NETWORK_PARAMS))       # 2, 4 and 8 ranks inside a node
    assert parameters_for(across, node.device) == list(PARAMS["collective"])   # a device has no network


def test_calibrate_recovers_a_slower_fabric(node, tmp_path, capsys):
    truth = with_efficiency(node, network_bandwidth_bytes_per_s=10e9, network_latency_s=20e-6)
    path = tmp_path / "xnode.csv"
    path.write_text(_rows(truth))
    rows, _ = read_measurements(path)
    result = calibrate(rows, node, max_fit_rows=200)
    assert result.params["network_bandwidth_bytes_per_s"][1] == pytest.approx(10e9, rel=0.05)
    assert result.params["network_latency_s"][1] == pytest.approx(20e-6, rel=0.25)
    assert result.after["collective"].median_ape < 0.02 < result.before["collective"].median_ape

    out = tmp_path / "cluster.yaml"
    assert main(["calibrate", str(path), "--hw", "dgx-a100", "-o", str(out), "--max-rows", "200"]) == 0
    assert "cluster-device.yaml (its device)" in capsys.readouterr().out
    spec = simhw.load_hw(str(out))                      # a node whose device file sits beside it
    assert spec.network.bandwidth_bytes_per_s == pytest.approx(10e9, rel=0.05)
    assert spec.intra_link == node.intra_link and spec.device_count == node.device_count
    assert spec.device.efficiency == node.device.efficiency    # no device constant was fitted
    assert (tmp_path / "cluster-device.yaml").exists()
    # the calibrated node prices a cross-node all-reduce as the slower fabric does
    row = read_measurements(path)[0][-1]
    assert predict_s(row, spec) == pytest.approx(row.measured_s, rel=0.05)


def test_network_parameter_needs_a_node(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text(HEAD + "".join(f"collective,1e-4,all_reduce,{b},8,8,bf16,r{b}\n" for b in SIZES))
    out = tmp_path / "o.yaml"
    rc = main(["calibrate", str(path), "--hw", "a100", "-o", str(out), "--param", "network_bandwidth_bytes_per_s"])
    err = capsys.readouterr().err
    assert rc == 2 and "network_bandwidth_bytes_per_s" in err and "node" in err and "Traceback" not in err
    assert not out.exists()


def test_send_recv_rows_inside_a_node_fit_the_p2p_fraction(node):
    """Send/recv rows inside a node add collective_p2p_fraction to the fit (started from the bus
    fraction where the spec leaves it 0) and recover a known one."""
    truth = with_efficiency(node, collective_p2p_fraction=0.8)
    shapes = [(2, b) for b in SIZES] + [(8, b) for b in SIZES]
    text = HEAD + "".join(f"collective,1,{op},{b},{n},{n},bf16,x\n" for op in ("send_recv", "all_reduce")
                          for n, b in shapes if op == "all_reduce" or n == 2)
    rows, bad = parse_lines(text.splitlines(True))
    assert not bad
    measured = HEAD + "".join(f"collective,{predict_s(r, truth)},{r.op.name},{int(r.op.shape['bytes'])},"
                              f"{int(r.op.shape['ranks'])},{int(r.op.shape['ranks'])},bf16,r{i}\n"
                              for i, r in enumerate(rows))
    rows, _ = parse_lines(measured.splitlines(True))
    assert parameters_for(rows, node) == (list(PARAMS["collective"]) + ["collective_p2p_fraction",
                                                                        "collective_local_copy"])  # 2 and 8 ranks
    start = with_efficiency(node, collective_p2p_fraction=0.0)
    result = calibrate(rows, start, max_fit_rows=200)
    assert result.params["collective_p2p_fraction"][0] == start.device.efficiency.collective_bus_fraction
    assert result.params["collective_p2p_fraction"][1] == pytest.approx(0.8, rel=0.05)


def test_copy_rows_fit_the_pinned_and_pageable_fractions():
    """Copy rows bring host_copy_fraction into the fit; pageable ones also host_pageable_fraction,
    and a fit on copies made with a known pageable fraction recovers it."""
    pinned = "copy,h2d,{b},true,{t}"
    pageable = "copy,d2h,{b},false,{t}"
    rows, bad = parse_lines(["kind,op,bytes,pinned,measured_s"] + [pinned.format(b=2 ** 20 * i, t=1) for i in (1, 2)],
                            "pinned.csv")
    assert not bad and "host_copy_fraction" in parameters_for(rows) and "host_pageable_fraction" not in parameters_for(rows)
    truth = with_efficiency(simhw.load_hw("h100"), host_pageable_fraction=0.25)
    lines = ["kind,op,bytes,pinned,measured_s"]
    for i in range(1, 41):
        for template in (pinned, pageable):
            probe, _ = parse_lines(["kind,op,bytes,pinned,measured_s", template.format(b=2 ** 18 * i, t=1)], "x")
            lines.append(template.format(b=2 ** 18 * i, t=predict_s(probe[0], truth)))
    rows, bad = parse_lines(lines, "copies.csv")
    assert not bad and "host_pageable_fraction" in parameters_for(rows)
    result = calibrate(rows, simhw.load_hw("h100"))
    assert result.params["host_pageable_fraction"][1] == pytest.approx(0.25, rel=0.02)


def test_calibrate_fits_the_local_copy_and_peer_latency_when_ranks_vary(node):
    """Rows inside a node at 2, 4 and 8 ranks pin the out-of-place copy of each rank's own chunk
    (collective_local_copy, cost/comm.py); all-to-alls at several sizes of group pin their cost per
    peer (collective_peer_latency_s, which starts from the hop latency when it is 0)."""
    truth = with_efficiency(node, collective_local_copy=0.6, collective_peer_latency_s=2e-6)
    head = "kind,measured_s,op,bytes,ranks,dtype,label\n"
    shapes = [(op, n, b) for op in ("all_gather", "all_to_all") for n in (2, 4, 8) for b in SIZES]
    text = head + "".join(f"collective,1,{op},{b},{n},bf16,x\n" for op, n, b in shapes)
    rows, _ = parse_lines(text.splitlines(True))
    text = head + "".join(f"collective,{predict_s(r, truth)},{op},{b},{n},bf16,r{i}\n"
                          for i, (r, (op, n, b)) in enumerate(zip(rows, shapes)))
    rows, _ = parse_lines(text.splitlines(True))
    names = parameters_for(rows, node)
    assert "collective_local_copy" in names and "collective_peer_latency_s" in names
    one_size = [m for m in rows if m.op.shape["ranks"] == 8]
    assert "collective_local_copy" not in parameters_for(one_size, node)
    result = calibrate(rows, node, params=["collective_local_copy", "collective_peer_latency_s"], max_fit_rows=200)
    assert result.params["collective_local_copy"][0] == node.device.efficiency.collective_local_copy
    assert result.params["collective_local_copy"][1] == pytest.approx(0.6, rel=0.05)
    assert result.params["collective_peer_latency_s"][1] == pytest.approx(2e-6, rel=0.1)
    assert result.after["collective"].median_ape < 0.01
