"""validate/facts.py: the figures REPORT.md's notes give about the measurement rows are computed
from the rows (hand-made rows here, so each figure is known)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import simhw
from simhw.validation.schema import parse_lines

sys.path.insert(0, str(Path(__file__).parents[2] / "validate"))
import facts  # noqa: E402  (validate/facts.py)

CSV = """kind,m,n,k,dtype,op,bytes,ranks,ranks_per_node,elements,reads,writes,label,measured_s
gemm,8192,8192,8192,bf16,,,,,,,,,0.004
gemm,8192,8192,4096,bf16,,,,,,,,,0.002
gemm,16,16,16,bf16,,,,,,,,,0.000003
collective,,,,fp16,all_reduce,1e8,8,8,,,,,0.001
collective,,,,fp16,send_recv,1e8,2,2,,,,,0.0005
collective,,,,fp16,send_recv,1e6,2,1,,,,,0.0002
collective,,,,fp16,all_reduce,1e6,2,1,,,,,0.0002
collective,,,,fp16,all_reduce,1e6,4,2,,,,,0.0001
norm,,,,fp16,,,,,1e8,1,1,m input_layernorm tokens=1,0.0004
elementwise,,,,fp16,,,,,1e8,2,1,m add tokens=1,0.0003
elementwise,,,,fp16,,,,,1e3,2,1,m add tokens=1,0.000001
"""


def _rows():
    rows, bad = parse_lines(CSV.splitlines(), "facts.csv")
    assert not bad
    return rows


def test_each_figure_is_computed_from_the_rows():
    dev = simhw.load_hw("a100")
    rows = _rows()
    fr = facts.gemm_peak_fractions(rows, dev)            # the 16^3 GEMM is not large
    assert fr == pytest.approx([2 * 8192 ** 3 / 0.004 / 312e12, 2 * 8192 ** 2 * 4096 / 0.002 / 312e12])
    ar = next(m for m in rows if m.op.name == "all_reduce")
    assert facts.bus_bandwidth(ar, 8) == pytest.approx(2 * 7 / 8 * 1e8 / 0.001)
    floor = facts.stream_floor_bytes(dev)                # twice the 40 MB L2
    assert floor == pytest.approx(80e6, rel=0.05)
    assert facts.stream_rates(rows, "add", floor) == pytest.approx([3 * 2e8 / 0.0003])   # the 6 kB add is left out
    assert facts.stream_rates(rows, "input_layernorm", floor) == pytest.approx([2 * 2e8 / 0.0004])


def test_the_notes_quote_the_computed_figures():
    dev = simhw.load_hw("a100")
    rows = _rows()
    text = facts.a100_notes({"aiconfigurator": rows, "vidur": rows}, dev)
    assert "up to 0.88" in text                         # 2 x 8192^3 / 4 ms / 312 TFLOP/s
    assert "all_reduce reaches 175 GB/s" in text and "send_recv 200 GB/s" in text
    assert "at most 5.0 GB/s point to point" in text    # 1 MB in 200 us, one GPU per node
    assert "scales 1.0 : 3.0 with 1, 2 GPUs per node" in text
    assert "torch add reaches 2.00 TB/s" in text and "1.00-1.00 TB/s" in text
    assert facts.a100_notes({}, dev).startswith("## Notes on the data")


ATTN = """kind,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,dtype,measured_s
attention,1,256,2048,32,4,128,true,fp16,0.001
attention,1,2048,2048,32,4,128,true,fp16,0.002
attention,1,1024,2048,32,4,128,true,fp16,0.001
attention,1,1,2048,32,4,128,false,fp16,0.001
attention,1,2048,2048,32,4,128,true,fp16,0.0001
"""


def test_prefill_rates_over_the_causal_scores_and_the_rectangle():
    rows, bad = parse_lines(ATTN.splitlines(), "attn.csv")
    assert not bad
    rates = facts.prefill_rates(rows)       # the half-length chunk, the decode row and the 0.1 ms row are out
    per_score = 4 * 128 * 32
    short_causal = 256 * (2048 - 256) + 256 * 257 / 2
    assert rates["short chunk"] == pytest.approx([(per_score * short_causal / 0.001, per_score * 256 * 2048 / 0.001)])
    assert rates["chunk ~ keys"] == pytest.approx([(per_score * 2048 * 2049 / 2 / 0.002,
                                                    per_score * 2048 * 2048 / 0.002)])
    text = facts._vidur_prefill(rows, rows, simhw.load_hw("a100"))
    assert "(9 and 34 over the whole chunk x cache rectangle" in text and "kv_append=true" in text
    assert "run at 0.06 of the dense peak over the causal scores" in text


def test_vidur_card_check_prices_long_and_mid_gemms_on_both_cards():
    text = "kind,m,n,k,dtype,measured_s\ngemm,8192,8192,8192,fp16,0.002\ngemm,1024,4096,4096,fp16,0.0001\n"
    rows, bad = parse_lines(text.splitlines(), "v.csv")
    assert not bad
    out = facts.vidur_card_check(rows)
    assert "dgx-a100 " in out and "a100-pcie " in out and "1 ms or more / of 50-500 us" in out
    assert facts.vidur_card_check(rows[:1]) == ""              # no mid-size row: nothing to compare


def test_the_a100_factor_line_needs_held_rows():
    text = "kind,m,n,k,dtype,held_s,measured_s\ngemm,8192,8192,8192,fp16,0.5,0.002\ngemm,1024,4096,4096,fp16,0.05,0.0001\n"
    rows, bad = parse_lines(text.splitlines(), "v.csv")
    assert not bad
    out = facts.vidur_card_check(rows)
    assert "carried over from the H100 (hot_flop_factor 1.76, hot_time_constant 0.26 s" in out
    long = {rows[0].line}
    assert facts._cool_a100([rows[0]], long) and facts._cool_a100([_rows()[0]], long) == ""   # no held_s


def test_gemm_inversions_count_larger_problems_that_run_faster():
    grid = """kind,m,n,k,dtype,measured_s
gemm,1,32,32,bf16,0.000010
gemm,2,32,32,bf16,0.000006
gemm,1,64,32,bf16,0.000011
gemm,2,64,32,bf16,0.000012
"""
    rows, bad = parse_lines(grid.splitlines(), "grid.csv")
    assert not bad
    inversions, pairs, (small, large, t_small, t_large) = facts.gemm_inversions(rows)
    assert pairs == 4 and inversions == 1           # 1x32x32 (10 us) -> 2x32x32 (6 us)
    assert (small, large) == ("1 x 32 x 32", "2 x 32 x 32") and (t_small, t_large) == (10e-6, 6e-6)
    assert facts.gemm_inversions(rows[:1]) is None
