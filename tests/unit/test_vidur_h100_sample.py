"""vidur's H100 per-op profile, sampled (validate/data/published/vidur-h100-sample.csv): an unfitted
check of the h100 spec on a second software generation. What the rows show is asserted here so a
change to the GEMM or row-wise models that moves them is seen."""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import simhw
from simhw.calibrate import with_efficiency
from simhw.validation import evaluate, read_measurements

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "validate" / "data" / "published" / "vidur-h100-sample.csv"
sys.path.insert(0, str(ROOT / "validate"))


def _result(hw):
    rows, bad = read_measurements(FILE)
    assert not bad
    return rows, evaluate(rows, hw, str(FILE), bad)


def test_the_sample_reads_and_prices_every_row():
    rows, result = _result(simhw.load_hw("h100"))
    assert len(rows) == 810 and len(result.rows) == 810
    assert {k: s.n for k, s in result.kinds.items()} == {"gemm": 360, "elementwise": 270, "norm": 180}
    gemm = result.kinds["gemm"]
    assert gemm.median_ape < 0.12 and gemm.p90_ape < 0.27 and -0.10 < gemm.bias < 0


def test_that_years_cublas_shows_the_waves_stream_k_removes():
    """With the spec's stream-K scheduler the GEMMs come out fast (modern cuBLAS, simhw's own runs);
    priced as whole waves of tiles, as the 2024 library ran them, the bias all but vanishes."""
    hw = simhw.load_hw("h100")
    assert hw.efficiency.gemm_stream_k
    on = _result(hw)[1].kinds["gemm"]
    off = _result(with_efficiency(hw, gemm_stream_k=False))[1].kinds["gemm"]
    assert abs(off.bias) < abs(on.bias) / 3
    assert off.median_ape < on.median_ape


def test_the_report_note_computes_its_figures():
    import published_notes

    text = published_notes.vidur_h100_note()
    rows, result = _result(simhw.load_hw("h100"))
    rope = statistics.median(r.error for r, m in zip(result.rows, rows) if "attn_rope" in m.label)
    assert f"{rope:+.1%}" in text and f"{result.kinds['gemm'].median_ape:.1%} median" in text


def test_the_nccl_sample_prices_better_with_the_switch_reduction_than_without():
    """vidur's DGX H100 NCCL rows (vidur-h100-nccl-sample.csv): the dgx-h100 spec's NVLink SHARP
    all-reduce (collective_nvls_fraction) prices them closer than the ring alone, and the report's
    note states the figures it computes."""
    import published_notes

    path = FILE.parent / "vidur-h100-nccl-sample.csv"
    rows, bad = read_measurements(path)
    assert not bad and len(rows) == 877
    node = simhw.load_hw("dgx-h100")
    on = evaluate(rows, node, str(path)).kinds["collective"]
    off = evaluate(rows, with_efficiency(node, collective_nvls_fraction=0.0), str(path)).kinds["collective"]
    assert on.median_ape < off.median_ape and on.p90_ape < off.p90_ape
    assert on.median_ape < 0.12
    assert f"{on.median_ape:.1%} median, {on.p90_ape:.1%} p90" in published_notes.vidur_h100_nccl_note()
