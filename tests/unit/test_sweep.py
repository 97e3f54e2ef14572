"""`simhw sweep`: what-if tables over workload fields and hardware spec fields (cost/sweep.py,
spec/load.py load_hw_varied)."""
import json

import pytest

from simhw.cli import main
from simhw.cost.estimate import estimate
from simhw.cost.sweep import parse_vary, sweep
from simhw.errors import SimhwError, SpecError
from simhw.spec.load import load_hw, load_hw_varied
from simhw.workload.from_yaml import load_workload

DECODE = "workloads/llama2-70b-decode.yaml"
TRAIN = "workloads/llama2-7b-train.yaml"


def test_a_workload_sweep_row_is_the_estimate_with_those_fields_set():
    rows = sweep(DECODE, ["h100"], parse_vary(["parallelism.tp=4,8", "micro_batch=8,32"]), ["devices=8"])
    assert [r.values for r in rows][:2] == [(("parallelism.tp", "4"), ("micro_batch", "8")),
                                           (("parallelism.tp", "4"), ("micro_batch", "32"))]
    for r in rows:
        sets = ["devices=8"] + [f"{k}={v}" for k, v in r.values]
        assert r.result.step_time_s == estimate(load_workload(DECODE, sets), load_hw("h100")).step_time_s


def test_a_spec_field_changes_the_machine_and_cites_the_change():
    h100 = load_hw("h100")
    fast = load_hw_varied("h100", [("memory.hbm.bandwidth", "6.7 TB/s"), ("efficiency.launch", "2 us")])
    assert fast.main_memory.bandwidth_bytes_per_s == pytest.approx(6.7e12)
    assert fast.efficiency.launch_s == pytest.approx(2e-6)
    assert fast.compute_units == h100.compute_units and fast.peak_flop_per_s == h100.peak_flop_per_s
    assert "what-if" in fast.sources["memory.hbm.bandwidth"]
    assert load_hw("h100").main_memory.bandwidth_bytes_per_s == h100.main_memory.bandwidth_bytes_per_s  # cache untouched
    # decode of a 70 B model reads its weights each step: twice the bandwidth, a shorter step
    wl = load_workload(DECODE)
    assert estimate(wl, fast).step_time_s < 0.9 * estimate(wl, h100).step_time_s


def test_on_a_node_device_fields_reach_its_device():
    node = load_hw_varied("dgx-h100", [("memory.hbm.bandwidth", "6 TB/s"), ("links.intra.bandwidth", "900 GB/s")])
    same = load_hw_varied("dgx-h100", [("device.memory.hbm.bandwidth", "6 TB/s")])
    assert node.device.main_memory.bandwidth_bytes_per_s == same.device.main_memory.bandwidth_bytes_per_s == 6e12
    assert node.intra_link.bandwidth_bytes_per_s == pytest.approx(900e9)
    assert same.intra_link.bandwidth_bytes_per_s == load_hw("dgx-h100").intra_link.bandwidth_bytes_per_s


@pytest.mark.parametrize("overrides, needle", [([("memory.hbm.bandwith", "3 TB/s")], "did you mean 'bandwidth'"),
                                               ([("memory.hbm.bandwidth", "3 TB")], "bytes per s"),
                                               ([("compute.units.x", 3)], "holds a value")])
def test_bad_spec_fields_are_clear_errors(overrides, needle):
    with pytest.raises(SpecError) as err:
        load_hw_varied("h100", overrides)
    assert needle in str(err.value)


def test_rejected_combinations_are_rows_unless_all_are_rejected():
    rows = sweep(TRAIN, ["h100"], parse_vary(["parallelism.tp=1,3"]))
    assert rows[0].result is not None and rows[1].result is None and "tp" in rows[1].error
    with pytest.raises(SimhwError):
        sweep(TRAIN, ["h100"], parse_vary(["parallelism.tp=3,5"]))


@pytest.mark.parametrize("vary", [["tp"], ["tp="], ["tp=1,,2"], ["hw=a,b"], ["tp=1", "tp=2"], []])
def test_bad_vary_options_are_clear_errors(vary):
    with pytest.raises(SimhwError):
        parse_vary(vary)


def test_the_cli_prints_a_table_json_and_csv(tmp_path, capsys):
    args = ["sweep", DECODE, "--hw", "h100", "--vary", "hw.memory.hbm.bandwidth=3.35TB/s,6TB/s"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "hw.memory.hbm.bandwidth" in out and "cheapest per token" in out and "$ / M tok" in out
    assert main(args + ["--format", "json", "-o", str(tmp_path / "s.json")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["schema"] == "simhw.sweep/1" and len(data["rows"]) == 2
    assert data["rows"][1]["step_time_s"] < data["rows"][0]["step_time_s"]
    assert main(args + ["--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("hardware,hw.memory.hbm.bandwidth,")
    assert main(["sweep", DECODE, "--hw", "h100", "--vary", "parallelism.tpp=2"]) == 2
    assert main(["sweep", DECODE, "--hw", "h100", "--vary", "hw.memory.hbm.bandwidth=fast"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("simhw: error:") == 2


def test_the_cheapest_mark_compares_cost_per_token_not_per_step(capsys):
    """A bigger batch costs more per step and less per token: the mark goes to the cheapest per token."""
    assert main(["sweep", DECODE, "--hw", "h100", "--set", "devices=8", "--set", "parallelism.tp=8",
                 "--vary", "micro_batch=8,64", "--set", "global_batch=64"]) == 0
    marked = [line for line in capsys.readouterr().out.splitlines() if line.endswith("*")]
    assert len(marked) == 1 and " 64 " in marked[0]
