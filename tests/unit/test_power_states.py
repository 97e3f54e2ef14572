"""The die's three states under the power limit (simhw/cost/power.py): steady (hot: FLOPs at
energy.hot_flop_factor x energy.flop), burst (near idle temperature) and full (no limit); which one
measurement rows, traces and estimates use; the spec key's errors."""
import csv
import json
import statistics
from pathlib import Path

import pytest

import simhw
from simhw.cli import main
from simhw.cost.power import PowerState, power_limited
from simhw.cost.roofline import op_cost
from simhw.spec.model import DType
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines
from simhw.workload.from_yaml import workload_from_dict

DATA = Path(__file__).resolve().parents[2] / "validate" / "data" / "h100-2026-11-26"
ROWS = """kind,m,n,k,dtype,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,power,power_limited,measured_s
gemm,8192,8192,8192,bf16,,,,,,,,,,1
attention,,,,bf16,128,1,4096,32,32,128,false,,,1
gemm,8192,8192,8192,bf16,,,,,,,,steady,,1
gemm,8192,8192,8192,bf16,,,,,,,,full,,1
gemm,8192,8192,8192,bf16,,,,,,,,,false,1
gemm,8192,8192,8192,bf16,,,,,,,,,true,1
gemm,8192,8192,8192,bf16,,,,,,,,warm,,1
"""
TRAIN = {"model": "llama2-7b", "mode": "train", "dtype": "bf16", "seq_len": 4096, "micro_batch": 1,
         "global_batch": 1, "devices": 1}


def _rows():
    return parse_lines(ROWS.splitlines(), "rows.csv")


def _rate(hw, state):
    gemm = _rows()[0][0].op
    return gemm.flops / power_limited(op_cost(gemm, hw), hw, state).time_s


def test_a_hot_die_runs_a_large_gemm_slower_than_a_cool_one_at_the_same_limit():
    """H100: the 8192^3 GEMM at the measured burst rate (20-100 ms after idle) and the measured 6 s
    steady rate, both at 700 W, from one energy per FLOP and the hot factor."""
    hw = simhw.load_hw("h100")
    with (DATA / "power_bursts.csv").open(encoding="utf-8") as fh:
        bursts = [float(r["rate"]) for r in csv.DictReader(fh) if 0.02 <= float(r["burst_s"]) <= 0.1]
    with (DATA / "power_phases.csv").open(encoding="utf-8") as fh:
        steady = float({r["phase"]: r for r in csv.DictReader(fh)}["gemm_8192_bf16"]["rate"])
    full, burst, hot = (_rate(hw, s) for s in (PowerState.FULL, PowerState.BURST, PowerState.STEADY))
    assert full > burst > hot
    assert burst == pytest.approx(statistics.median(bursts), rel=0.01)
    assert hot == pytest.approx(steady, rel=0.01)
    assert full / hw.peak(DType.BF16) > 0.9


def test_the_board_draws_tdp_in_both_limited_states():
    hw = simhw.load_hw("h100")
    gemm = _rows()[0][0].op
    for state in (PowerState.BURST, PowerState.STEADY):
        c = power_limited(op_cost(gemm, hw), hw, state)
        body = c.time_s - hw.efficiency.launch_s
        assert hw.busy_w + c.energy_j / body == pytest.approx(hw.tdp_w, rel=1e-9), state
        assert c.power_limit_s > 0 and c.flop_energy_j > 0


def test_memory_bound_decode_runs_alike_in_every_state():
    """SDPA decode draws well under the limit (measured: the steady and first H100 runs agree), so
    the hot factor, which follows the tensor cores' activity, leaves it at full clock."""
    hw = simhw.load_hw("h100")
    decode = _rows()[0][1].op
    times = {s: power_limited(op_cost(decode, hw), hw, s).time_s for s in PowerState}
    assert times[PowerState.STEADY] == times[PowerState.BURST] == times[PowerState.FULL]


def test_a_spec_without_a_hot_factor_prices_steady_as_burst():
    hw = simhw.load_hw("l4")
    assert hw.hot_flop_factor == 1.0
    assert _rate(hw, PowerState.STEADY) == _rate(hw, PowerState.BURST) < _rate(hw, PowerState.FULL)


def test_rows_take_their_power_cell_else_the_callers_default():
    rows, bad = _rows()
    assert [r.power for r in rows] == [None, None, PowerState.STEADY, PowerState.FULL,
                                       PowerState.FULL, PowerState.BURST]
    assert len(bad) == 1 and bad[0].line == 8 and "'power' = 'warm' must be one of steady, burst, full" in bad[0].reason
    hw = simhw.load_hw("h100")
    plain, _, steady, full, legacy_false, legacy_true = (predict_s(r, hw) for r in rows)
    assert plain == legacy_true < steady and full == legacy_false < plain     # default: burst
    assert predict_s(rows[0], hw, PowerState.STEADY) == steady


def test_estimates_default_to_the_steady_state_and_take_another():
    hw = simhw.load_hw("h100")
    wl = workload_from_dict(TRAIN)
    steady, burst = simhw.estimate(wl, hw), simhw.estimate(wl, hw, power=PowerState.BURST)
    full = simhw.estimate(wl, hw, power=PowerState.FULL)
    assert full.step_time_s < burst.step_time_s < steady.step_time_s
    assert full.time_breakdown_s["power_limit"] == 0.0 and full.clock_scale == 1.0
    assert burst.clock_scale > steady.clock_scale


def test_cli_power_options(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_text("kind,m,n,k,dtype,measured_s\ngemm,8192,8192,8192,bf16,0.0014\n", encoding="utf-8")
    bias = {}
    for state in ("steady", "burst", "full"):
        assert main(["validate", str(path), "--hw", "h100", "--power", state, "--format", "json"]) == 0
        bias[state] = json.loads(capsys.readouterr().out)["kinds"]["gemm"]["bias"]
    assert bias["full"] < bias["burst"] < bias["steady"]
    assert main(["validate", str(path), "--hw", "h100", "--power", "steady", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["power_default"] == "steady"
    assert main(["validate", str(path), "--hw", "h100"]) == 0
    assert "(power: burst unless a row says otherwise)" in capsys.readouterr().out.splitlines()[0]
    example = Path(__file__).resolve().parents[2] / "workloads" / "llama2-7b-train.yaml"
    times = {}
    for state in ("steady", "full"):
        assert main(["estimate", str(example), "--hw", "h100", "--power", state, "--format", "json"]) == 0
        times[state] = json.loads(capsys.readouterr().out)
    step = {k: v["results"][0]["step_time_s"] for k, v in times.items()}
    assert step["full"] < step["steady"]
    assert [v["results"][0]["power"] for v in times.values()] == ["steady", "full"]
    assert main(["estimate", str(example), "--hw", "h100"]) == 0
    assert "(steady)" in next(line for line in capsys.readouterr().out.splitlines() if "clock at the power" in line)
    with pytest.raises(SystemExit) as err:
        main(["validate", str(path), "--hw", "h100", "--power", "warm"])
    assert err.value.code == 2


@pytest.mark.parametrize("value, text", [("0.5", "0.5 must be a plain number from 1 to 10"),
                                         ("hot", "'hot' must be a plain number from 1 to 10")])
def test_a_bad_hot_factor_is_a_spec_error_naming_the_key(tmp_path, value, text):
    from simhw.errors import SpecError

    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: h100\nname: bad-gpu\nenergy:\n  hot_flop_factor: {value}\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"energy\.hot_flop_factor: ") as err:
        simhw.load_hw(str(path))
    assert text in str(err.value) and "bad.yaml" in str(err.value)


def test_a_held_sdpa_settles_at_the_measured_clock():
    """An independent check of the hot die's FLOP energy: the causal SDPA (b 2, 32 heads, 8192
    tokens, hdim 128) held for 5 s at 700 W (power_phases-2.csv) ran at a median SM clock of
    1650 of 1980 MHz; simhw's steady-state DVFS clock for it is within 0.03 of that."""
    hw = simhw.load_hw("h100")
    with (DATA / "power_phases-2.csv").open(encoding="utf-8") as fh:
        phase = {r["phase"]: r for r in csv.DictReader(fh)}["sdpa_causal_8192_bf16"]
    with (DATA / "power_samples-2.csv").open(encoding="utf-8") as fh:
        clocks = [float(r["sm_clock_mhz"]) for r in csv.DictReader(fh)
                  if float(phase["start_s"]) + 1.0 <= float(r["t_s"]) <= float(phase["end_s"])]
    measured = statistics.median(clocks) / 1980.0
    rows, _ = parse_lines("kind,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,dtype,measured_s\n"
                          "attention,2,8192,8192,32,32,128,true,bf16,1\n".splitlines(), "x")
    cost = op_cost(rows[0].op, hw)
    body = cost.time_s - hw.efficiency.launch_s
    held = power_limited(cost, hw, PowerState.STEADY)
    assert body / (held.time_s - hw.efficiency.launch_s) == pytest.approx(measured, abs=0.03)


def test_a_step_runs_at_one_clock_set_by_its_average_draw():
    """The power controller averages over milliseconds: a window of one kernel runs at that
    kernel's own clock; a GEMM between memory-bound kernels runs at a higher clock than alone;
    a memory-bound window keeps full clock."""
    from simhw.cost.power import step_clock

    hw = simhw.load_hw("h100")
    gemm, decode = _rows()[0][0].op, _rows()[0][1].op
    g_full, d_full = op_cost(gemm, hw), op_cost(decode, hw)
    alone = power_limited(g_full, hw, PowerState.STEADY)
    s_alone = step_clock([(g_full, 1)], hw, PowerState.STEADY)
    assert power_limited(g_full, hw, PowerState.STEADY, s_alone).time_s == pytest.approx(alone.time_s, rel=1e-12)
    s_mix = step_clock([(g_full, 1), (d_full, 2)], hw, PowerState.STEADY)
    assert s_alone < s_mix < 1.0
    assert power_limited(g_full, hw, PowerState.STEADY, s_mix).time_s < alone.time_s
    assert step_clock([(d_full, 5)], hw, PowerState.STEADY) == 1.0
    assert step_clock([(g_full, 1)], hw, PowerState.FULL) == 1.0


def test_the_training_step_traces_gemms_are_priced_at_the_steps_clock():
    """simhw's own H100 / H200 training-step traces: their GEMMs, run between norms, copies and
    attention at the step's clock, within 5% in median and 15% at p90."""
    from simhw.validation import trace_result

    for gpu in ("h100", "h200"):
        path = DATA.parent / f"{gpu}-2026-11-26" / "train_step_trace.json.gz"
        st = trace_result(path, simhw.load_hw(gpu)).kinds["gemm"]
        assert st.n == 51 and st.median_ape <= 0.05 and st.p90_ape <= 0.15, (gpu, st)


def test_serving_defaults_to_a_cooler_die_than_training():
    """default_power: training holds the board at its limit (steady, hot die); serving alternates
    prefills with memory-bound decode steps far under it (burst)."""
    hw = simhw.load_hw("h100")
    prefill = workload_from_dict({"model": "llama2-7b", "mode": "prefill", "dtype": "bf16", "seq_len": 4096,
                                  "micro_batch": 8, "global_batch": 8, "devices": 1, "engine": "none"})
    auto, burst = simhw.estimate(prefill, hw), simhw.estimate(prefill, hw, power=PowerState.BURST)
    steady = simhw.estimate(prefill, hw, power=PowerState.STEADY)
    assert auto.power == "burst" and auto.step_time_s == burst.step_time_s < steady.step_time_s
    assert simhw.estimate(workload_from_dict(TRAIN), hw).power == "steady"
