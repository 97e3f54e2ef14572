"""The Hopper specs' measured (M) values follow from the files they cite (validate/data/), so a
value typed into a YAML cannot drift from its measurement: memory latency, achieved L2 read
bandwidth, the HBM read stream, idle power, graph launch, pinned-copy rate, L2 capacity and the
steady-state GEMM rate the energy per FLOP was derived from."""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

import simhw
from simhw.spec.model import DType, LinkKind

DATA = Path(__file__).resolve().parents[2] / "validate" / "data"
RUNS = {"h100": "h100-2026-11-26", "h200": "h200-2026-11-26"}


def _rows(run: str, name: str) -> list[dict]:
    with (DATA / run / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name", sorted(RUNS))
def test_memory_values_come_from_the_microbenchmarks(name):
    hw, run = simhw.load_hw(name), RUNS[name]
    bench = _rows(run, "microbench.csv")
    chase = [float(r["value"]) for r in bench if r["test"] == "load_latency" and int(r["bytes"]) >= 1 << 30]
    assert hw.main_memory.latency_s == pytest.approx(chase[0], rel=0.01)
    l2 = hw.memory_level("l2")
    resident = [float(r["value"]) for r in bench
                if r["test"] == "read_bandwidth" and int(r["bytes"]) <= l2.capacity_bytes * 0.75]
    assert l2.bandwidth_bytes_per_s == pytest.approx(statistics.median(resident), rel=0.01)
    stream = [float(r["value"]) for r in bench if r["test"] == "read_bandwidth" and int(r["bytes"]) >= 1 << 30]
    fraction = statistics.mean(stream) / hw.main_memory.bandwidth_bytes_per_s
    eff = hw.efficiency
    for value in (eff.memory_fraction, eff.attention_memory_fraction, eff.elementwise_memory_fraction):
        assert value == pytest.approx(fraction, abs=0.006)
    env = json.loads((DATA / run / "env.json").read_text(encoding="utf-8"))
    assert l2.capacity_bytes == env["l2_bytes"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_power_launch_and_copy_values_come_from_the_runs(name):
    hw, run = simhw.load_hw(name), RUNS[name]
    phases = {r["phase"]: r for r in _rows(run, "power_phases.csv")}
    idle = phases["idle_before"]
    samples = [float(r["power_w"]) for r in _rows(run, "power_samples.csv")
               if float(idle["start_s"]) + 1.0 <= float(r["t_s"]) <= float(idle["end_s"])]
    assert hw.idle_w == pytest.approx(statistics.median(samples), abs=1.0)
    ops = _rows(run, "measurements.csv")
    smallest = min(float(r["measured_s"]) for r in ops if r["timing"] == "kernel")
    assert hw.efficiency.launch_s == pytest.approx(smallest, rel=0.1)
    pinned = [int(r["bytes"]) / float(r["measured_s"]) for r in ops
              if r["kind"] == "copy" and r["pinned"] == "true" and int(r["bytes"]) >= 1 << 28]
    link = hw.link(LinkKind.PCIE).bandwidth_bytes_per_s
    assert hw.efficiency.host_copy_fraction == pytest.approx(statistics.mean(pinned) / link, abs=0.01)


def test_the_energy_per_flop_reproduces_the_measured_steady_gemm():
    """H100: the 8192^3 GEMM held at 700 W (power_phases.csv) is priced at its measured rate within
    2%; the H200 (same die, the H100's energy carried over) within 5%."""
    from simhw.cost.power import power_limited
    from simhw.cost.roofline import op_cost
    from simhw.validation.schema import parse_lines

    rows, _ = parse_lines("kind,m,n,k,dtype,measured_s\ngemm,8192,8192,8192,bf16,1\n".splitlines(), "x")
    for name, tol in (("h100", 0.02), ("h200", 0.05)):
        hw = simhw.load_hw(name)
        rate = float({r["phase"]: r for r in _rows(RUNS[name], "power_phases.csv")}["gemm_8192_bf16"]["rate"])
        predicted = rows[0].op.flops / power_limited(op_cost(rows[0].op, hw), hw).time_s
        assert predicted == pytest.approx(rate, rel=tol), name
    assert simhw.load_hw("h200").flop_energy(DType.BF16) == simhw.load_hw("h100").flop_energy(DType.BF16)


@pytest.mark.parametrize("name", ["h100", "h200", "b200", "h100-pcie"])
def test_decode_block_latencies_scale_with_the_memory_latency(name):
    """The paged-decode latencies (dependent DRAM round trips) are the A100 fits scaled by this
    part's main-memory round trip over the 600 ns loaded one the A100 fits were made beside (the
    A100 spec itself now carries its unloaded round trip: cost/latency.py)."""
    hw, a100 = simhw.load_hw(name), simhw.load_hw("a100")
    a100_loaded_round_trip_s = 600e-9     # the reference the specs' source texts state
    ratio = hw.main_memory.latency_s / a100_loaded_round_trip_s
    for key in ("attention_block_latency_s", "attention_first_block_latency_s"):
        assert getattr(hw.efficiency, key) == pytest.approx(getattr(a100.efficiency, key) * ratio, abs=6e-9), key
