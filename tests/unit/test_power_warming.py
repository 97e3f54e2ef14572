"""A burst held at the power limit warms the die as it runs (cost/power.py hot_factor, spec key
energy.hot_time_constant): its FLOPs cost more the longer it lasts, up to the steady state."""
import csv
import math
from pathlib import Path

import pytest

import simhw
from simhw.cost.estimate import OpCoster
from simhw.cost.power import PowerState, hot_factor, power_limited
from simhw.cost.roofline import op_cost
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.transformer import build_graph

BURSTS = Path(__file__).resolve().parents[2] / "validate" / "data" / "h100-2026-11-26" / "power_bursts.csv"
GEMM = "kind,m,n,k,dtype,held_s,measured_s\ngemm,8192,8192,8192,bf16,{held},1\n"


def _gemm(held=""):
    rows, bad = parse_lines(GEMM.format(held=held).splitlines(), "g.csv")
    assert not bad
    return rows[0]


def test_the_hot_factor_grows_with_the_burst_from_cool_to_steady():
    hw = simhw.load_hw("h100")
    tau, full = hw.hot_time_constant_s, hw.hot_flop_factor
    assert tau == pytest.approx(0.26) and full == pytest.approx(1.76)
    held = [0.0, 0.01, 0.1, 1.0, 10.0, 1e4]
    f = [hot_factor(hw, PowerState.BURST, h) for h in held]
    assert f[0] == 1.0 and all(a < b for a, b in zip(f, f[1:])) and f[-1] == pytest.approx(full, rel=1e-4)
    x = 1.0 / tau                        # the average warming over a 1 s burst
    assert f[3] == pytest.approx(1 + (full - 1) * (1 - (1 - math.exp(-x)) / x))
    assert hot_factor(hw, PowerState.STEADY, 0.01) == full and hot_factor(hw, PowerState.FULL, 10) == 1.0
    assert hot_factor(simhw.load_hw("l4"), PowerState.BURST, 10.0) == 1.0      # no time constant, no factor


def test_the_h100_time_constant_reproduces_its_measured_gemm_bursts():
    """The 8192^3 bf16 GEMM's rate in bursts after idle (simhw's own H100 run): each burst of 17 ms
    to 0.94 s within 4% at tau = 0.26 s, and the rate falls from burst to steady as the bursts grow."""
    hw = simhw.load_hw("h100")
    gemm = _gemm().op
    cost = op_cost(gemm, hw)
    with BURSTS.open() as fh:
        rows = [r for r in csv.DictReader(fh) if float(r["burst_s"]) >= 0.02]
    model = []
    for r in rows:
        t = power_limited(cost, hw, PowerState.BURST, held_s=float(r["elapsed_s"])).time_s
        model.append(gemm.flops / t)
        assert model[-1] == pytest.approx(float(r["rate"]), rel=0.04), r
    assert all(a > b for a, b in zip(model, model[1:]))


def test_a_rows_held_s_warms_it_and_nothing_else_changes():
    hw = simhw.load_hw("h100")
    cool, warm, hot = predict_s(_gemm(), hw), predict_s(_gemm(1.0), hw), predict_s(_gemm(), hw, PowerState.STEADY)
    assert cool < warm < hot
    assert _gemm("").held_s is None and _gemm(0.5).held_s == 0.5
    rows, bad = parse_lines(GEMM.format(held="-1").splitlines(), "g.csv")
    assert not rows and "'held_s' = '-1' must be non-negative" in bad[0].reason


def test_a_long_serving_prefill_runs_warmer_than_a_short_one():
    """A serving step (BURST) is priced as a burst as long as its own kernels: a prefill of seconds
    warms the die and runs at a lower clock per token than one of a fraction of a second."""
    hw = simhw.load_hw("h100")

    def prefill(batch):
        wl = workload_from_dict({"model": "llama2-7b", "mode": "prefill", "dtype": "bf16", "seq_len": 2048,
                                 "micro_batch": batch, "global_batch": batch, "devices": 1, "engine": "none"})
        coster = OpCoster(hw, wl)
        clock = coster.use_step_clock(build_graph(wl).ops)
        return coster.held_s, clock

    (short_s, short_clock), (long_s, long_clock) = prefill(1), prefill(32)
    assert 0 < short_s < 0.2 < long_s and long_clock < short_clock < 1.0


def test_the_vidur_converter_holds_each_point_for_its_22_blocks(tmp_path):
    from simhw.validation import convert_vidur

    folder = tmp_path / "a100" / "compute" / "meta-llama" / "Llama-2-7b-hf"
    folder.mkdir(parents=True)
    ops = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj", "input_layernorm",
           "post_attention_layernorm", "mlp_act", "attn_rope", "add")
    head = ["num_tokens", "num_tensor_parallel_workers", "n_head", "n_kv_head", "n_embd", "n_expanded_embd",
            "vocab_size", "use_gated_mlp"] + [f"time_stats.{o}.median" for o in ops]
    body = [1024, 1, 32, 32, 4096, 11008, 32000, True] + [0.1] * len(ops)     # ms
    (folder / "mlp.csv").write_text(",".join(head) + "\n" + ",".join(map(str, body)) + "\n")
    df = convert_vidur(tmp_path, legacy_attention=False, send_recv=False)
    assert len(df) == len(ops) and list(df.held_s) == pytest.approx([22 * len(ops) * 0.1e-3] * len(ops))
