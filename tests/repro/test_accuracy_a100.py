"""Accuracy of simhw's per-op cost model against real A100 measurements (validate/REPORT.md).

Sources: ai-dynamo/aiconfigurator@095f58a5 (A100-SXM4-80GB, vLLM 0.14 kernels in CUDA graphs:
GEMM, FlashAttention prefill and decode, NCCL 2.27 collectives) and microsoft/vidur@7d475133
(Llama-2 GEMMs on an A100 whose variant is not stated). Data in ../shared/validation (skipped
when absent); rows are subsampled deterministically to keep the test fast.

Targets of the issue (median / p90 absolute percentage error): GEMM 5% / 15%, attention 8% / 20%,
collectives 10% / 25%. Attention, collectives and aiconfigurator's GEMMs are asserted at the
target, and so are the two GEMM sets together; vidur's GEMM band alone is what the model reaches
(REPORT.md: median 5.4%) plus a small margin, so a change that makes the model worse fails.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import simhw
from simhw.validation import convert, evaluate, frame_to_measurements

VALIDATION = Path(__file__).parents[2].parent / "shared" / "validation"
pytestmark = pytest.mark.skipif(not VALIDATION.is_dir(), reason="../shared/validation not present")

# (source, kind): (max median APE, max p90 APE, max |bias|)
BANDS = {
    ("aiconfigurator", "gemm"): (0.05, 0.15, 0.03),      # strided rows today: 4.5% / 14.6%
    ("vidur", "gemm"): (0.06, 0.15, 0.03),
    ("aiconfigurator", "attention"): (0.08, 0.20, 0.05),
    ("aiconfigurator", "collective"): (0.10, 0.25, 0.05),
    ("vidur", "norm"): (0.12, 0.30, 0.08),          # sarathi's scalar-load RMSNorm (cost/latency.py): 9.5% / 25.1% today
    # sarathi's 2024 paged kernels; its prefill appends the chunk's K/V per CTA (rows kv_append=true)
    ("vidur", "attention"): (0.08, 0.20, 0.05),
}
STRIDE = {"gemm": 4, "attention": 6, "collective": 1, "norm": 4}


@pytest.fixture(scope="module")
def results():
    hw = simhw.load_hw("dgx-a100")
    out = {}
    for source in sorted({s for s, _ in BANDS}):
        df = convert(source, VALIDATION / source)
        df = df[df.kind.isin(list(STRIDE))]
        df = pd.concat([g.iloc[::STRIDE[kind]] for kind, g in df.groupby("kind")])
        rows, bad = frame_to_measurements(df)
        assert not bad
        out[source] = evaluate(rows, hw, source)
    return out


@pytest.mark.parametrize("source, kind", sorted(BANDS))
def test_error_band(results, source, kind):
    med, p90, bias = BANDS[(source, kind)]
    st = results[source].kinds[kind]
    print(f"{source} {kind}: n={st.n} median={st.median_ape:.3f} p90={st.p90_ape:.3f} bias={st.bias:+.3f}")
    assert st.n > 100
    assert st.median_ape <= med
    assert st.p90_ape <= p90
    assert abs(st.bias) <= bias


def test_the_a100_gemm_sets_meet_the_target_with_the_one_stage_kernel():
    """Every GEMM row of aiconfigurator and vidur (17,592) meets the 5% / 15% target, and
    aiconfigurator's alone do; without cuBLAS's one-stage 32 x 32 kernel (cost/ctas.py light_gemm)
    aiconfigurator's kernels under 5 us come out slow and its p90 misses."""
    from simhw.calibrate import with_efficiency

    hw = simhw.load_hw("dgx-a100")
    plain = with_efficiency(hw, gemm_light_tile=0)
    rows = {}
    for source in ("aiconfigurator", "vidur"):
        df = convert(source, VALIDATION / source)
        rows[source], bad = frame_to_measurements(df[df.kind == "gemm"])
        assert not bad
    both = evaluate(rows["aiconfigurator"] + rows["vidur"], hw, "a100").kinds["gemm"]
    aic = evaluate(rows["aiconfigurator"], hw, "aiconfigurator").kinds["gemm"]
    without = evaluate(rows["aiconfigurator"], plain, "aiconfigurator").kinds["gemm"]
    print(f"both: {both.median_ape:.4f} / {both.p90_ape:.4f}; aiconfigurator {aic.median_ape:.4f} / "
          f"{aic.p90_ape:.4f}, without the kernel {without.median_ape:.4f} / {without.p90_ape:.4f}")
    assert both.n > 17000 and both.median_ape <= 0.05 and both.p90_ape <= 0.15
    assert aic.median_ape <= 0.05 and aic.p90_ape <= 0.15
    assert without.p90_ape > 0.15


def test_vllm_custom_all_reduce_meets_the_collective_target():
    """aiconfigurator's rows of vLLM 0.14's own NVLink all-reduce (custom_allreduce_perf, CUDA-graph
    mode, 2-8 GPUs, 256 B-1 GiB) priced by cost/comm.py custom_all_reduce_time_s (NCCL from 8 MiB
    on, as vLLM does) meet the collective target; priced as NCCL's they miss it by far."""
    from simhw.calibrate import with_efficiency

    hw = simhw.load_hw("dgx-a100")
    df = convert("aiconfigurator", VALIDATION / "aiconfigurator")
    rows, bad = frame_to_measurements(df[df.op == "custom_all_reduce"])
    assert not bad and len(rows) >= 60
    st = evaluate(rows, hw, "aiconfigurator").kinds["collective"]
    print(f"custom all-reduce: n={st.n} median={st.median_ape:.3f} p90={st.p90_ape:.3f} bias={st.bias:+.3f}")
    assert st.median_ape <= 0.10 and st.p90_ape <= 0.25 and abs(st.bias) <= 0.05
    plain = with_efficiency(hw, custom_ar_barrier_s=0.0)
    assert evaluate(rows, plain, "aiconfigurator").kinds["collective"].median_ape > 0.5


def test_much_better_than_a_flat_roofline(results):
    """The efficiency model beats max(FLOPs/peak, bytes/bandwidth) by a wide margin on GEMMs."""
    from simhw.validation.predict import device_of

    hw = simhw.load_hw("dgx-a100")
    dev = device_of(hw)
    df = convert("aiconfigurator", VALIDATION / "aiconfigurator")
    rows, _ = frame_to_measurements(df[df.kind == "gemm"].iloc[::4])
    flat = sorted(abs(max(r.op.flops / dev.peak(r.op.dtype), r.op.bytes / dev.main_memory.bandwidth_bytes_per_s)
                      / r.measured_s - 1) for r in rows)
    flat_median = flat[len(flat) // 2]
    assert flat_median > 2 * results["aiconfigurator"].kinds["gemm"].median_ape


def test_splitwise_end_to_end():
    """Splitwise (Mutinifni/splitwise-sim@8f99e7dc, DGX-A100): Llama-2-70B TP 2/4/8 and BLOOM-176B
    TP 8 prefill and decode-iteration times against simhw.estimate with the spec's serving-engine
    overheads (fitted on these rows); target median error 10%. The host-dispatch floor
    is what makes TP 8 decode no faster than TP 4 at small batch, as measured."""
    from simhw.validation.e2e import splitwise_rows
    from simhw.validation.stats import percentile

    rows = splitwise_rows(VALIDATION / "splitwise-sim")
    assert len(rows) == 152
    ape = [abs(r.error) for r in rows]
    print(f"splitwise: n={len(rows)} median={percentile(ape, 50):.3f} p90={percentile(ape, 90):.3f}")
    assert percentile(ape, 50) <= 0.06
    assert abs(percentile([r.error for r in rows], 50)) <= 0.05
    dec = {(r.tp, r.batch): r for r in rows if r.model == "llama2-70b" and r.phase == "decode" and r.prompt == 512
           and r.output == 512}
    for tp in (2, 4, 8):
        assert abs(dec[(tp, 1)].error) <= 0.15, dec[(tp, 1)]


def test_argonne_vllm_end_to_end():
    """LLM-Inference-Bench (argonne-lcf/LLM-Inference-Bench@4211f5d4), vLLM on A100: whole-batch
    generate latency (prefill + L decode iterations) at TP 1/2/4 against simhw.estimate on
    a100-40gb with a current vLLM's engine overheads (the workload's engine: block, fitted on these
    rows); held to the issue's end-to-end target."""
    from simhw.validation.e2e import argonne_rows
    from simhw.validation.stats import percentile

    rows = argonne_rows(VALIDATION / "argonne-llm-inference-bench")
    assert len(rows) > 150
    ape = [abs(r.error) for r in rows]
    print(f"argonne vLLM: n={len(rows)} median={percentile(ape, 50):.3f} p90={percentile(ape, 90):.3f}")
    assert percentile(ape, 50) <= 0.10
    assert percentile(ape, 90) <= 0.25
    assert abs(percentile([r.error for r in rows], 50)) <= 0.05


def test_argonne_tensorrt_llm_end_to_end():
    """LLM-Inference-Bench TensorRT-LLM generate() on A100 with the trt-llm engine profile (fitted on
    these rows: 0.1 ms per iteration, 15 us per sequence; GPU time alone is within 9% median)."""
    from simhw.validation.e2e import argonne_rows
    from simhw.validation.stats import percentile

    rows = argonne_rows(VALIDATION / "argonne-llm-inference-bench", framework="TensorRT-LLM")
    assert len(rows) > 200
    ape = [abs(r.error) for r in rows]
    assert percentile(ape, 50) <= 0.10
    assert percentile(ape, 90) <= 0.25
    assert abs(percentile([r.error for r in rows], 50)) <= 0.05


def test_argonne_gpu_energy():
    """LLM-Inference-Bench NVML power x latency of vLLM generate() on A100 (TP 1) against simhw's energy:
    FLOP and byte energy (HBM device + on-chip transport) plus (idle + active) power x time. The two
    power constants were fitted on these rows and ML.ENERGY's together (validate/REPORT.md)."""
    from simhw.validation.e2e import argonne_energy_rows
    from simhw.validation.stats import percentile

    rows = argonne_energy_rows(VALIDATION / "argonne-llm-inference-bench")
    assert len(rows) == 8
    ape = [abs(r.error) for r in rows]
    assert percentile(ape, 50) <= 0.20
    assert abs(percentile([r.error for r in rows], 50)) <= 0.10
    assert all(0.5 * r.measured_s < r.predicted_s < 1.5 * r.measured_s for r in rows)


def test_mlenergy_energy_per_output_token():
    """ML.ENERGY v2 GPU energy per output token (NVML, steady state, summed over the TP GPUs) against one
    decode iteration's energy / batch. The power constants were fitted on the first seven models'
    rows (and LLM-Inference-Bench's); the other models are unfitted (validate/REPORT.md)."""
    from simhw.validation.e2e import MLENERGY_FITTED, mlenergy_rows
    from simhw.validation.stats import percentile

    rows = mlenergy_rows(VALIDATION / "ml-energy-leaderboard-v2", energy=True)
    assert len(rows) >= 100 and all(r.phase == "energy" for r in rows)
    fitted = [r for r in rows if r.model in MLENERGY_FITTED]
    ape = [abs(r.error) for r in fitted]
    print(f"ml.energy energy: n={len(fitted)} median={percentile(ape, 50):.3f} p90={percentile(ape, 90):.3f}")
    assert percentile(ape, 50) <= 0.15
    assert abs(percentile([r.error for r in fitted], 50)) <= 0.10
    assert percentile([abs(r.error) for r in fitted if r.tp == 1], 50) <= 0.10
    assert percentile([abs(r.error) for r in rows], 50) <= 0.20
    assert not mlenergy_rows(VALIDATION / "ml-energy-leaderboard-v2", gpu="h100")   # only A100 rows are here


def test_mlenergy_time_per_output_token():
    """ML.ENERGY leaderboard v2 (vLLM 0.5.4 serving on A100-SXM4-40GB): mean TPOT of seven models at
    TP 1-8 against one decode iteration at the mean running batch, with vLLM 0.5.4's engine overheads
    (VLLM_054_ENGINE, fitted on seven models' rows: without its per-worker cost TP 8 came out 2x fast;
    the other models' rows are an unfitted check)."""
    from simhw.validation.e2e import mlenergy_rows
    from simhw.validation.stats import percentile

    rows = mlenergy_rows(VALIDATION / "ml-energy-leaderboard-v2")
    assert len(rows) >= 40
    ape = [abs(r.error) for r in rows]
    print(f"ml.energy: n={len(rows)} median={percentile(ape, 50):.3f} p90={percentile(ape, 90):.3f}")
    assert percentile(ape, 50) <= 0.08
    assert percentile(ape, 90) <= 0.25
    assert abs(percentile([r.error for r in rows], 50)) <= 0.05
    from simhw.validation.e2e import MLENERGY_FITTED

    unfitted = [abs(r.error) for r in rows if r.model not in MLENERGY_FITTED]     # twelve more architectures
    assert len(unfitted) >= 60 and percentile(unfitted, 50) <= 0.12 and percentile(unfitted, 90) <= 0.25


def test_calibrate_engine_on_splitwise(tmp_path):
    """simhw calibrate-engine on Splitwise's A100 iterations finds a host floor near the spec's
    0.42 ms per layer and a held-back median error under 8%."""
    from simhw.engine_fit import cost_iterations, fit_engine, read_iterations
    from simhw.spec.load import load_hw

    files = sorted((VALIDATION / "splitwise-sim").rglob("perf_model*.csv"))
    df = pd.concat([pd.read_csv(f) for f in files])
    df = df[df.hardware == "a100-80gb"]
    keys = ["model", "tensor_parallel", "batch_size", "prompt_size", "token_size"]
    med = df.groupby(keys)[["prompt_time", "token_time"]].median().reset_index()
    rows = []
    for r in med.itertuples(index=False):
        common = dict(model=r.model, tp=r.tensor_parallel, batch=r.batch_size, dtype="fp16")
        rows.append({**common, "mode": "prefill", "tokens": r.prompt_size, "measured_s": r.prompt_time / 1e3})
        rows.append({**common, "mode": "decode", "tokens": r.prompt_size + r.token_size // 2,
                     "measured_s": r.token_time / 1e3})
    path = tmp_path / "splitwise_iterations.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    fit = fit_engine(cost_iterations(read_iterations(path), load_hw("dgx-a100")))
    assert 0.3e-3 < fit.values_s["host_per_layer"] < 0.6e-3
    assert fit.after[0] <= 0.08


def test_vidur_all_reduce_inside_a_node():
    """vidur's DGX-A100 all_reduce rows on 2, 4 and 8 GPUs of one node (its `size` column is bytes):
    the NCCL model fitted on aiconfigurator's rows, unchanged, meets the collective target's median
    (6.6%; p90 27%, from messages under 1 MB whose times jump between neighbouring sizes)."""
    hw = simhw.load_hw("dgx-a100")
    df = convert("vidur", VALIDATION / "vidur", legacy_attention=False, send_recv=False)
    df = df[(df.kind == "collective") & (df.ranks_per_node >= df.ranks)].iloc[::2]
    rows, bad = frame_to_measurements(df)
    assert not bad and len(rows) > 1000
    st = evaluate(rows, hw, "vidur").kinds["collective"]
    assert st.median_ape <= 0.10 and st.p90_ape <= 0.32 and abs(st.bias) <= 0.05
    big = [r for r in rows if r.op.shape["bytes"] >= 1e6]
    st_big = evaluate(big, hw, "vidur").kinds["collective"]
    assert st_big.median_ape <= 0.08 and st_big.p90_ape <= 0.18


def test_vidur_collectives_inside_a_node_meet_the_target():
    """All of vidur's collectives inside one DGX-A100 node, all_reduce and send_recv together: the
    collective target (10% / 25%), with send/recv priced as one direct NVLink copy
    (collective_p2p_fraction; REPORT.md: 8.1% / 22.8%, send_recv alone 11.7% / 18.1%)."""
    hw = simhw.load_hw("dgx-a100")
    df = convert("vidur", VALIDATION / "vidur", legacy_attention=False)
    df = df[(df.kind == "collective") & (df.ranks_per_node >= df.ranks)]
    rows, bad = frame_to_measurements(df)
    assert not bad and len(rows) > 3000
    st = evaluate(rows, hw, "vidur").kinds["collective"]
    assert st.median_ape <= 0.10 and st.p90_ape <= 0.25 and abs(st.bias) <= 0.05
    sends = [r for r in rows if r.op.name == "send_recv"]
    assert len(sends) > 500
    st_send = evaluate(sends, hw, "vidur").kinds["collective"]
    assert st_send.median_ape <= 0.14 and st_send.p90_ape <= 0.22


def test_llmcompass_compiled_gelu_and_layernorm():
    """LLMCompass times its GELU and LayerNorm as torch.compile'd functions (timing=compiled: the
    host's guard checks on every call, host_compiled_call_gap, one constant fitted on the small rows);
    the large rows, where the kernel dominates, check the kernels."""
    hw = simhw.load_hw("dgx-a100")
    df = convert("llmcompass", VALIDATION / "llmcompass")
    rows, bad = frame_to_measurements(df[df.kind.isin(["elementwise", "norm"])])
    assert not bad and {m.timing for m in rows} == {"compiled"}
    res = evaluate(rows, hw, "llmcompass")
    gelu, norm = res.kinds["elementwise"], res.kinds["norm"]
    assert gelu.n == 22 and gelu.median_ape <= 0.05 and gelu.p90_ape <= 0.15
    assert norm.n == 26 and norm.median_ape <= 0.10 and norm.p90_ape <= 0.30
    large = [r for r in res.rows if r.kind == "elementwise" and r.measured_s > 3e-4]
    assert large and all(abs(r.error) < 0.15 for r in large)


def test_the_two_gemm_sets_share_their_llama_shapes():
    """validate/agreement.py compares aiconfigurator's and vidur's GEMMs on the shapes both timed (360):
    harness columns such as aiconfigurator's loop reuse (a_reuse_bytes) must not split a shape's key,
    or the comparison silently drops out of REPORT.md."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "validate"))
    import agreement

    keys = {}
    for source in ("aiconfigurator", "vidur"):
        df = convert(source, VALIDATION / source)
        rows, _ = frame_to_measurements(df[df.kind == "gemm"])
        keys[source] = {agreement._shape_key(m) for m in rows}
    assert len(keys["aiconfigurator"] & keys["vidur"]) >= 300
