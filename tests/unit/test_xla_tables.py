"""OpenXLA's measured GEMM and collective tables (validate/xla_tables.py, validate/data/published/):
the converter, and what simhw's GEMM and collective models make of the committed rows."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import simhw
from simhw.validation import read_measurements
from simhw.validation.predict import predict_s

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "validate"))

import xla_tables  # noqa: E402
from own_runs import bus_bandwidth as _bus  # noqa: E402

PUBLISHED = ROOT / "validate" / "data" / "published"

MATMUL = '''
entries {
  key: "sm_100_B200"
  value {
    entries {
      b: 2
      m: 256
      n: 512
      k: 1024
      flops { key: "bf16xbf16->bf16" value: 100000000000000 }
      flops { key: "f32xf32->f32" value: 50000000000000 }
      flops { key: "f8e4m3fnxf8e4m3fn->bf16" value: 200000000000000 }
    }
  }
}
entries {
  key: "gfx942"
  value {
    entries { b: 1 m: 256 n: 256 k: 256
      flops { key: "bf16xbf16->bf16" value: 4000000000000 } }
    entries { b: 1 m: 256 n: 256 k: 256
      flops { key: "bf16xbf16->bf16" value: 9000000000000 } }
  }
}
entries {
  key: "sm_75"
  value { entries { b: 1 m: 256 n: 256 k: 256 flops { key: "bf16xbf16->bf16" value: 1 } } }
}
'''

COLLECTIVE = '''
entries {
  key: "sm_90"
  value {
    entries {
      instruction {
        opcode: "reduce-scatter"
        shape { element_type: F32 dimensions: 1024 layout { minor_to_major: 0 } }
        iota_collective_device_list { num_replica_groups: 2 num_devices_per_group: 4 iota_reshape_dims: 8 }
      }
      network_throughput_bytes_per_sec: 16384000000
    }
    entries {
      instruction {
        opcode: "all-reduce"
        shape { element_type: F32 dimensions: 72 }
        iota_collective_device_list { num_replica_groups: 1 num_devices_per_group: 8 }
      }
    }
    entries {
      instruction {
        opcode: "collective-permute"
        shape { element_type: F32 dimensions: 256 }
        source_target_pairs { target: 4 }
        source_target_pairs { source: 1 target: 5 }
      }
      network_throughput_bytes_per_sec: 1024000000
    }
  }
}
entries {
  key: "sm_75"
  value { entries { instruction { opcode: "all-reduce" shape { element_type: F32 dimensions: 8 }
    iota_collective_device_list { num_replica_groups: 1 num_devices_per_group: 8 } }
    network_throughput_bytes_per_sec: 1 } }
}
'''


def test_matmul_rows_keep_bf16_and_tf32_of_the_gpus_simhw_has():
    rows = xla_tables.matmul_rows(MATMUL)
    assert set(rows) == {"b200", "mi300x"}                     # sm_75 has no spec here
    b200 = {r["dtype"]: r for r in rows["b200"]}
    assert set(b200) == {"bf16", "tf32"}                      # FP8 left out (module docstring)
    flops = 2 * 2 * 256 * 512 * 1024
    assert float(b200["bf16"]["measured_s"]) == pytest.approx(flops / 1e14)
    assert float(b200["tf32"]["measured_s"]) == pytest.approx(flops / 5e13)
    assert (b200["bf16"]["batch"], b200["bf16"]["power"], b200["bf16"]["timing"]) == (2, "full", "kernel")
    (dup,) = rows["mi300x"]                                   # a repeated shape: the first entry wins
    assert float(dup["measured_s"]) == pytest.approx(2 * 256 ** 3 / 4e12)


def test_collective_rows_take_nccl_tests_bytes():
    rows = xla_tables.collective_rows(COLLECTIVE)
    assert set(rows) == {"dgx-h100"}                           # no sm_75 node spec
    rs, p2p = rows["dgx-h100"]           # the all-reduce without a throughput is skipped, not joined to the next
    # the reduce-scatter's shape is its output: the buffer is ranks x that (nccl-tests' convention)
    assert (rs["op"], rs["ranks"], rs["bytes"]) == ("reduce_scatter", 4, 1024 * 4 * 4)
    assert float(rs["measured_s"]) == pytest.approx(16384 / 16.384e9)
    assert (p2p["op"], p2p["ranks"], p2p["bytes"]) == ("send_recv", 2, 1024)
    assert "2 pairs" in p2p["label"]


def test_converter_cli_writes_files_and_rejects_missing_input(tmp_path):
    src = tmp_path / "m.txtpb"
    src.write_text(MATMUL, encoding="utf-8")
    assert xla_tables.main(["--matmul", str(src), "--out", str(tmp_path / "out")]) == 0
    rows, bad = read_measurements(tmp_path / "out" / "xla-gemm-b200-bf16.csv")
    assert len(rows) == 1 and not bad
    assert xla_tables.main(["--matmul", str(tmp_path / "missing.txtpb")]) == 2
    assert xla_tables.main([]) == 2


def _errors(name: str, spec: str, keep=lambda m: True) -> np.ndarray:
    rows, bad = read_measurements(PUBLISHED / name)
    assert not bad
    hw = simhw.load_hw(spec)
    return np.array([predict_s(m, hw) / m.measured_s - 1 for m in rows if keep(m)])


def test_large_h100_gemms_match_xlas_at_full_clock():
    """XLA's H100 dots of 50 us or more (its own fixed costs no longer matter) within 10% median."""
    e = _errors("xla-gemm-h100-bf16.csv", "h100", lambda m: m.measured_s >= 50e-6)
    assert len(e) > 30
    assert np.median(np.abs(e)) < 0.10


@pytest.mark.parametrize("node", ["dgx-h100", "dgx-b200", "gb200-nvl72", "gb300-nvl72"])
def test_large_ring_collectives_match_xlas_tables(node):
    """All-gather, reduce-scatter and all-to-all of 16 MB and more over 4 and 8 GPUs (the 8-GPU rows
    of 1-2 GiB set the bus fraction; the others are checks): median within 10%."""
    ring = {"all_gather", "reduce_scatter", "all_to_all"}

    def keep(m):
        return (m.op.shape["bytes"] >= 16e6 and m.op.shape["ranks"] in (4, 8)
                and m.label.split()[0].replace("-", "_") in ring)

    e = _errors(f"xla-collective-{node}.csv", node, keep)
    assert len(e) > 40
    assert np.median(np.abs(e)) < 0.10


def test_two_gpu_all_gathers_move_less_bus_bandwidth_in_data_and_model():
    """The local copy of the rank's own chunk (cost/comm.py): 2-GPU all-gathers of 1-2 GiB reach
    less bus bandwidth than 8-GPU ones, in OpenXLA's H100 table and in simhw."""
    hw = simhw.load_hw("dgx-h100")
    measured = _bus("dgx-h100", "all-gather", (2,)) / _bus("dgx-h100", "all-gather", (8,))
    modelled = _bus("dgx-h100", "all-gather", (2,), hw) / _bus("dgx-h100", "all-gather", (8,), hw)
    assert measured < 0.85 and modelled < 0.85
    assert modelled == pytest.approx(measured, abs=0.08)


def test_gb200_rack_all_reduces_run_nvlink_sharp_in_data_and_model():
    """In the NVL72 rack NCCL's all-reduce outruns the ring (NVLink SHARP): the table's 1 GiB+
    all-reduces move about 1.3x the all-gathers' bus bandwidth at 16-72 GPUs, and simhw's too."""
    hw = simhw.load_hw("gb200-nvl72")
    rack = (16, 18, 32, 36, 64, 72)
    measured = _bus("gb200-nvl72", "all-reduce", rack) / _bus("gb200-nvl72", "all-gather", rack)
    modelled = _bus("gb200-nvl72", "all-reduce", rack, hw) / _bus("gb200-nvl72", "all-gather", rack, hw)
    assert measured > 1.2 and modelled > 1.2
    assert modelled == pytest.approx(measured, rel=0.1)


def test_gb200_small_all_to_alls_pay_per_peer_not_per_hop():
    """An all-to-all posts its sends at once: over the rack its few-KB rows grow by about 0.85 us a
    peer, while the ring's all-gathers chain 1.45 us hops (hwspecs/gb200.yaml). Priced with the
    hop latency the all-to-alls of 8-72 GPUs come out about 2x slow; with the peer latency within
    45% (the 8-18 GPU rows sit flat at 12 us, which one slope does not follow)."""
    import dataclasses

    rows, _ = read_measurements(PUBLISHED / "xla-collective-gb200-nvl72.csv")
    hw = simhw.load_hw("gb200-nvl72")
    eff = hw.device.efficiency
    assert 0 < eff.collective_peer_latency_s < eff.collective_hop_latency_s
    chained = dataclasses.replace(hw, device=dataclasses.replace(
        hw.device, efficiency=dataclasses.replace(eff, collective_peer_latency_s=0.0)))
    small = [m for m in rows if m.op.shape["bytes"] <= 8192 and m.op.shape["ranks"] >= 8]

    def error(spec, op):
        return np.median([abs(predict_s(m, spec) / m.measured_s - 1) for m in small if m.label.startswith(op)])

    assert error(hw, "all-to-all") < 0.45 < 0.9 < error(chained, "all-to-all")
    assert error(hw, "all-gather") < 0.25           # the ring keeps its hops


def test_mi300x_mesh_collectives_match_without_a_fit():
    """OpenXLA's MI300X table, read after the mesh topology was written (hwspecs/mi300x-8.yaml: a
    group of g GPUs gets g - 1 of the 7 Infinity Fabric links): collectives of 256 MiB and more over
    2, 4 and 8 GPUs within 10% median; priced as a switch, the 2-GPU ones would be 4x too fast."""
    import dataclasses

    from simhw.spec.model import LinkTopology

    rows, bad = read_measurements(PUBLISHED / "xla-collective-mi300x-8.csv")
    assert not bad
    hw = simhw.load_hw("mi300x-8")
    big = [m for m in rows if m.op.shape["bytes"] >= 2 ** 28]
    assert {m.op.shape["ranks"] for m in big} == {2, 4, 8}
    e = np.array([predict_s(m, hw) / m.measured_s - 1 for m in big])
    assert np.median(np.abs(e)) < 0.10
    switch = dataclasses.replace(hw, intra_link=dataclasses.replace(hw.intra_link, topology=LinkTopology.SWITCH))
    pairs = [m for m in big if m.op.shape["ranks"] == 2]
    assert np.median([m.measured_s / predict_s(m, switch) for m in pairs]) > 4


def test_the_reports_xla_note_computes_its_figures():
    """validate/published_notes.py: the figures validate/report.py's OpenXLA note states, computed from the
    committed files and specs (no figure typed by hand that a model change would leave stale)."""
    import report
    import published_notes

    figs = published_notes.note_figures()
    # the permutes' share of one NVLink direction at 1-2 GiB, worked out here from the files
    shares = []
    for node in ("dgx-h100", "dgx-b200"):
        link = next(lk for lk in simhw.load_hw(node).device.links if lk.kind.value == "nvlink")
        rows, _ = read_measurements(PUBLISHED / f"xla-collective-{node}.csv")
        shares += [m.op.shape["bytes"] / m.measured_s / link.bandwidth_bytes_per_s for m in rows
                   if m.label.startswith("collective-permute") and m.op.shape["bytes"] >= 2 ** 30]
    assert (figs["permute_lo"], figs["permute_hi"]) == (min(shares), max(shares))
    assert 0.5 < figs["permute_lo"] < figs["permute_hi"] < figs["p2p_fraction"]
    # a burst at the power limit runs slower than full clock, so its error is the less negative one
    assert figs["b200_full"] < figs["b200_burst"]
    assert figs["b200_compute_fraction"] == simhw.load_hw("b200").efficiency.compute_fraction
    # XLA's B200 all-reduces reach their all-gathers' bus bandwidth; the GB200 rack's NVLink SHARP more
    assert figs["ar_ag_b200"] < 1.1 < figs["nvls_gain"]
    text = report.XLA_NOTE.format(offset_us=1.0, offset_median=0.1, offset_p90=0.2, mesh_measured="2 : 4",
                                  mesh_priced="2 : 4", **figs)
    assert "{" not in text and f"{figs['permute_lo']:.2f}-{figs['permute_hi']:.2f}" in text
