"""Trace -> costed ops: FLOPs/bytes from shapes, kernel linking, phases, the Graph, re-costing and
validation against a CUDA trace's own kernel times."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from simhw.cost.roofline import memory_time_s, op_cost
from simhw.spec.load import load_hw
from simhw.spec.model import DType
from simhw.trace import ape_table, estimate_trace, load_trace, summarize, trace_to_graph, validate_trace
from simhw.trace.cost import _analysis
from simhw.workload.graph import Collective, Graph, OpKind, Phase

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "traces"
REAL = ROOT.parent / "shared" / "validation" / "traces"
BF = "c10::BFloat16"


def real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def _op(name, ts, dur, tid=1, dims=None, types=None, concrete=None, seq=None, fwd=None, cat="cpu_op", **extra):
    args = {"External id": int(ts)}
    if dims is not None:
        args["Input Dims"], args["Input type"] = dims, types
    if concrete is not None:
        args["Concrete Inputs"] = concrete
    if seq is not None:
        args["Sequence number"], args["Fwd thread id"] = seq, fwd
    args.update(extra)
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _launch(ts, corr, tid=1, name="cudaLaunchKernel"):
    return {"ph": "X", "cat": "cuda_runtime", "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": 2.0,
            "args": {"correlation": corr, "External id": corr, "cbid": 211}}


def _gpu(name, ts, dur, corr, cat="kernel", stream=7, **extra):
    return {"ph": "X", "cat": cat, "name": name, "pid": 0, "tid": stream, "ts": ts, "dur": dur,
            "args": {"correlation": corr, "device": 0, "stream": stream, **extra}}


@pytest.fixture
def cuda_trace(tmp_path) -> Path:
    """A torch-2.x-style CUDA trace: bf16 linear, causal flash SDPA, an H2D copy, backward on its
    own thread, an NCCL all-reduce, an op with no rule, a kernel with no launch, [memory] events."""
    ev = [
        _op("ProfilerStep#3", 0.0, 2000.0, cat="user_annotation"),
        _op("aten::linear", 10.0, 50.0, dims=[[4, 128, 1024], [4096, 1024], [4096]], types=[BF] * 3, seq=5, fwd=0),
        _op("aten::addmm", 12.0, 40.0, dims=[[4096], [512, 1024], [1024, 4096], [], []],
            types=[BF, BF, BF, "Scalar", "Scalar"]),
        _launch(20.0, 100), _gpu("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n", 30.0, 80.5, 100),
        _op("aten::_scaled_dot_product_flash_attention", 100.0, 30.0, dims=[[4, 16, 128, 64]] * 3 + [[], [], [], []],
            types=[BF] * 3 + ["Scalar", "Scalar", "Scalar", ""], concrete=["", "", "", "0.", "True", "False", ""],
            seq=6, fwd=0),
        _launch(105.0, 101), _gpu("flash_fwd_kernel", 120.0, 40.0, 101),
        _op("aten::copy_", 200.0, 20.0, dims=[[4, 128], [4, 128], []], types=["long int", "long int", "Scalar"]),
        _launch(205.0, 102, name="cudaMemcpyAsync"),
        _gpu("Memcpy HtoD (Pinned -> Device)", 210.0, 2.0, 102, cat="gpu_memcpy", bytes=4096),
        _op("fbgemm::mystery", 300.0, 10.0, dims=[[1000]], types=["float"]),
        _launch(302.0, 103), _gpu("mystery_kernel", 310.0, 7.0, 103),
        # backward on the autograd thread
        _op("autograd::engine::evaluate_function: AddmmBackward0", 400.0, 100.0, tid=2, seq=5, fwd=1),
        _op("AddmmBackward0", 401.0, 98.0, tid=2, dims=[[512, 4096]], types=[BF], seq=5, fwd=1),
        _op("aten::mm", 405.0, 40.0, tid=2, dims=[[512, 4096], [4096, 1024]], types=[BF, BF]),
        _launch(410.0, 104, tid=2), _gpu("sm90_xmma_gemm_bf16bf16_bf16f32_f32_nn_n", 450.0, 81.0, 104),
        _op("c10d::allreduce_", 600.0, 50.0, tid=2, dims=[[], [], [], []], types=["TensorList", "", "", "Scalar"]),
        _op("record_param_comms", 601.0, 45.0, tid=2, dims=[[], []], types=["TensorList", "Scalar"],
            **{"Collective name": "allreduce", "In msg nelems": 1048576, "Out msg nelems": 1048576,
               "Group size": 8, "dtype": "BFloat16"}),
        _launch(610.0, 105, tid=2), _gpu("ncclDevKernel_AllReduce_Sum_bf16_RING_LL", 620.0, 300.0, 105, stream=20),
        _gpu("orphan_kernel<float>(float*)", 1500.0, 5.0, 999),
        {"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 11.0,
         "args": {"Device Type": 1, "Device Id": 0, "Bytes": 1048576, "Total Allocated": 5e6, "Total Reserved": 8e6}},
        {"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 12.0,
         "args": {"Device Type": 0, "Device Id": -1, "Bytes": 64, "Total Allocated": 9e9, "Total Reserved": 0}},
        {"ph": "s", "id": 100, "pid": 1, "tid": 1, "ts": 20.0, "cat": "ac2g", "name": "ac2g"},
    ]
    doc = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3", "numSms": 132,
                                                      "totalGlobalMem": 85e9}],
           "distributedInfo": {"rank": 0, "world_size": 8, "backend": "nccl"}, "traceEvents": ev}
    p = tmp_path / "cuda.pt.trace.json"
    p.write_text(json.dumps(doc))
    return p


def by_name(ops, name):
    return [o for o in ops if o.name == name]


def test_linking_kernels_phases_and_flops(cuda_trace):
    t = load_trace(cuda_trace)
    a = _analysis(t)
    assert t.device_name() == "NVIDIA H100 80GB HBM3" and a.steps == 1
    (lin,) = by_name(a.ops, "aten::linear")            # the first costed op owns its addmm child
    assert lin.est.kind is OpKind.GEMM and lin.est.dtype is DType.BF16 and lin.phase is Phase.FWD
    assert lin.est.flops == 2 * 512 * 4096 * 1024 + 512 * 4096
    assert dict(lin.est.shape) == {"m": 512, "n": 4096, "k": 1024, "batch": 1}
    assert lin.gpu_s == pytest.approx(80.5e-6) and lin.kernels == 1 and lin.cpu_s == pytest.approx(50e-6)
    (att,) = by_name(a.ops, "aten::_scaled_dot_product_flash_attention")
    full = 4 * 4 * 16 * 128 * 128 * 64
    assert att.est.kind is OpKind.ATTENTION and att.est.model_flops == full and att.est.flops == full / 2
    assert att.est.shape["causal"] == 1 and att.est.shape["flash"] == 1 and att.est.shape["kv_heads"] == 16
    (cp,) = by_name(a.ops, "aten::copy_")
    assert cp.est.kind is OpKind.COPY and cp.est.input_bytes == 4 * 128 * 8 and cp.gpu_s == pytest.approx(2e-6)
    (mm,) = by_name(a.ops, "aten::mm")
    assert mm.phase is Phase.BWD and mm.context == "AddmmBackward0 of aten::linear"
    assert mm.est.flops == 2 * 512 * 1024 * 4096 and mm.gpu_s == pytest.approx(81e-6)
    (ar,) = by_name(a.ops, "record_param_comms")
    assert ar.est.kind is OpKind.COLLECTIVE and ar.phase is Phase.BWD
    assert dict(ar.est.shape) == {"collective": list(Collective).index(Collective.ALL_REDUCE),
                                  "bytes": 1048576 * 2, "ranks": 8, "scope": 0}
    assert a.bwd_nodes == 1 and a.bwd_matched == 1
    assert a.total_gpu_s == pytest.approx((80.5 + 40 + 2 + 7 + 81 + 300 + 5) * 1e-6)


def test_unmapped_is_listed_never_dropped(cuda_trace):
    a = _analysis(load_trace(cuda_trace))
    rows = {name: (count, share, why) for name, count, share, why in a.unmapped_rows()}
    assert rows["fbgemm::mystery"][:2] == (1, pytest.approx(7 / 515.5))
    assert rows["fbgemm::mystery"][2] == "no cost rule"
    orphan = next(n for n in rows if n.startswith("(no launching op)"))
    assert "orphan_kernel" in orphan and rows[orphan][1] == pytest.approx(5 / 515.5)
    costed = sum(o.gpu_s for o in a.ops)
    assert costed + sum(s for _, s, _ in rows.values()) * a.total_gpu_s == pytest.approx(a.total_gpu_s)


def test_graph_for_the_cost_model(cuda_trace):
    graph, unmapped = trace_to_graph(cuda_trace)
    assert isinstance(graph, Graph) and len(graph.ops) == 5 and len(unmapped) == 2
    assert [op.phase for op in graph.ops] == [Phase.FWD, Phase.FWD, Phase.FWD, Phase.BWD, Phase.BWD]
    h100 = load_hw("h100")
    for op in graph.ops:
        if op.kind is not OpKind.COLLECTIVE:
            assert op_cost(op, h100).time_s > 0
    gemm = graph.ops[0]
    assert {"m", "n", "k", "batch"} <= set(gemm.shape)
    att = graph.ops[1]
    assert {"batch", "heads", "kv_heads", "seq_q", "seq_kv", "head_dim", "causal", "flash"} <= set(att.shape)


def test_estimate_trace_fields_and_conventions(cuda_trace):
    h100 = load_hw("h100")
    r = estimate_trace(cuda_trace, h100, ops=True)
    d = r.to_dict(ops=True)
    for key in ("hardware", "workload", "mode", "devices", "step_time_s", "total_time_s", "tokens_per_s", "model_flops",
                "hardware_flops", "mfu", "hfu", "energy_j", "avg_power_w", "cost_usd", "eflops", "time_breakdown_s",
                "memory", "ops", "unmapped", "measured_time_s"):
        assert key in d
    assert r.mode == "train" and r.devices == 1 and r.trace_device == "NVIDIA H100 80GB HBM3"
    assert r.step_time_s == pytest.approx(sum(r.time_breakdown_s.values()))
    compute = sum(o.time_s for o in r.ops if o.kind != "collective")
    comm = next(o.time_s for o in r.ops if o.kind == "collective")
    bwd = sum(o.time_s for o in r.ops if o.phase == "bwd" and o.kind != "collective")
    assert r.step_time_s == pytest.approx(compute + max(0.0, comm - bwd))     # backward all-reduce overlaps
    assert r.memory.activations_bytes == 5e6                                   # CUDA [memory] peak, not CPU's
    assert r.measured_time_s == pytest.approx(515.5e-6)
    a100 = estimate_trace(cuda_trace, load_hw("a100"))
    assert a100.step_time_s > r.step_time_s                                    # slower machine, same trace
    assert any("mystery" in line for line in r.notes())


def test_validate_trace_rows_and_ape(cuda_trace):
    df = validate_trace(cuda_trace, load_hw("h100"))
    assert list(df.columns)[:5] == ["kind", "name", "phase", "predicted_s", "measured_s"]
    assert len(df) == 5 and (df.measured_s > 0).all() and (df.predicted_s > 0).all()
    stats = ape_table(df)
    assert set(stats.kind) == {"gemm", "attention", "copy", "collective", "all"}
    row = stats.set_index("kind").loc["gemm"]
    apes = sorted(abs(p - m) / m for p, m in zip(df[df.kind == "gemm"].predicted_s, df[df.kind == "gemm"].measured_s))
    assert row.median_ape == pytest.approx(sum(apes) / 2) and row.ops == 2


def test_cpu_fixture_gpt_block():
    a = _analysis(load_trace(FIXTURES / "cpu_gpt_block_train.json.gz"))
    assert not a.unmapped and a.bwd_nodes == a.bwd_matched == 33
    kinds = {(o.est.kind, o.phase) for o in a.ops}
    assert {(OpKind.GEMM, Phase.FWD), (OpKind.GEMM, Phase.BWD), (OpKind.ATTENTION, Phase.FWD),
            (OpKind.ATTENTION, Phase.BWD), (OpKind.NORM, Phase.BWD), (OpKind.OPTIMIZER, Phase.OPTIMIZER)} <= kinds
    qkv = next(o for o in a.ops if o.name == "aten::linear")
    assert qkv.est.flops == 2 * 128 * 384 * 128 + 128 * 384                 # [2,64,128] x [384,128] + bias
    fwd, bwd = [o for o in a.ops if o.est.kind is OpKind.ATTENTION]
    causal = 4 * 2 * 4 * 64 * 64 * 32 / 2                                  # B=2, H=4, S=64, D=32, causal
    assert fwd.est.flops == causal and bwd.est.flops == 2.5 * causal
    assert bwd.context.startswith("ScaledDotProductFlashAttentionForCpuBackward0 of aten::scaled_dot_product")
    steps = [o for o in a.ops if o.phase is Phase.OPTIMIZER]
    params = 4 * 128 + 384 * 128 + 384 + 128 * 128 + 128 + 512 * 128 + 512 + 128 * 512 + 128
    assert max(o.est.shape["elements"] for o in steps) == params            # AdamW foreach over every param


def test_cpu_fixture_llama_bf16_autocast():
    a = _analysis(load_trace(FIXTURES / "cpu_llama_bf16_train.json.gz"))
    assert not a.unmapped
    gemms = [o for o in a.ops if o.est.kind is OpKind.GEMM and o.phase is Phase.FWD]
    assert gemms and all(o.est.dtype is DType.BF16 for o in gemms)
    (emb,) = [o for o in a.ops if o.est.kind is OpKind.EMBEDDING and o.phase is Phase.FWD]
    assert emb.est.shape["tokens"] == 64
    assert any(o.name == "aten::_fused_rms_norm" for o in a.ops)
    graph, _ = trace_to_graph(FIXTURES / "cpu_llama_bf16_train.json.gz")
    assert graph.tokens == 64


def test_cpu_fixture_convnet():
    a = _analysis(load_trace(FIXTURES / "cpu_convnet_train.json.gz"))
    (conv,) = [o for o in a.ops if o.est.kind is OpKind.CONV and o.phase is Phase.FWD]
    assert conv.est.flops == 2 * 4 * 8 * 16 * 16 * 3 * 9                   # N=4, K=8, 16x16 out, C=3, 3x3
    (bconv,) = [o for o in a.ops if o.est.kind is OpKind.CONV and o.phase is Phase.BWD]
    assert bconv.name == "aten::convolution_backward" and bconv.est.flops >= conv.est.flops


def test_flops_match_torch_profiler_counter(tmp_path):
    """Where torch counts FLOPs itself (with_flops=True, in memory only), simhw agrees."""
    torch = pytest.importorskip("torch")
    from torch.nn import functional as F
    from torch.profiler import ProfilerActivity, profile
    a, b = torch.randn(64, 32), torch.randn(32, 48)
    x, w = torch.randn(2, 3, 16, 16), torch.randn(8, 3, 3, 3)
    p, q = torch.randn(4, 16, 8), torch.randn(4, 8, 24)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        torch.mm(a, b)
        F.conv2d(x, w, padding=1, stride=2)
        torch.bmm(p, q)
    theirs = {e.name: e.flops for e in prof.events() if e.flops}
    path = tmp_path / "flops.json"
    prof.export_chrome_trace(str(path))
    ours = {o.name: o.est.flops for o in _analysis(load_trace(path)).ops}
    assert ours["aten::mm"] == theirs["aten::mm"] == 2 * 64 * 48 * 32
    assert ours["aten::bmm"] == theirs["aten::bmm"]
    assert ours["aten::mkldnn_convolution"] == theirs["aten::conv2d"]     # stride 2: 8x8 output


def test_real_sampled_training_trace():
    path = real("hta_sampled_training_rank0_trace.json.gz")
    s = summarize(path)
    assert s["backward_nodes"] == 289 and s["backward_nodes_with_forward"] == 94   # as its README says
    assert s["steps"] == 2 and s["format"] == "cuda"
    kinds = {k["kind"]: k for k in s["kinds"]}
    assert kinds["gemm"]["ops"] > 300 and kinds["collective"]["ops"] >= 10
    unmapped = sum(u["share"] for u in s["unmapped"])
    costed = sum(k["gpu_s"] for k in s["kinds"])
    assert costed / s["measured_gpu_s"] + unmapped == pytest.approx(1.0)      # every GPU µs accounted for
    df = validate_trace(path, load_hw("a100"))
    stats = ape_table(df).set_index("kind")
    assert stats.loc["gemm", "ops"] > 300 and math.isfinite(stats.loc["all", "median_ape"])
    r = estimate_trace(path, load_hw("h100"))
    assert r.step_time_s > 0 and r.steps == 2 and r.unmapped


def test_real_alexnet_trace_without_shapes():
    path = real("hta_alexnet_a100_fwd_trace.json.gz")
    r = estimate_trace(path, load_hw("a100"))
    assert any("record_shapes=True" in w for w in r.warnings)
    names = {u.name for u in r.unmapped}
    assert "aten::cudnn_convolution" in names and "aten::linear" in names
    assert r.step_time_s > 0                     # the host-to-device copies are still estimated (bytes known)
    df = validate_trace(path, load_hw("a100"))
    assert set(df.kind) == {"copy"} and len(df) == 16


def test_nll_loss_reads_one_value_per_row_and_its_backward_writes_the_whole_gradient():
    """nll_loss_forward gathers one log-probability per row (not the [N, C] input); its backward
    writes the dense [N, C] grad_input (ATen LossNLL.cu). Real H200 trace: 122 us for 4096 x 32000
    fp32 (validate/data/h200-2026-11-26/train_step_trace.json.gz)."""
    from simhw.trace.ops import Args
    from simhw.trace.rules import lookup

    n, c = 4096, 32000
    fwd = lookup("aten::nll_loss_forward").fn(Args([[n, c], [n], [], [], []], ["float", "long int", "", "Scalar", "Scalar"], ()))
    bwd = lookup("aten::nll_loss_backward").fn(Args([[], [n, c], [n], [], [], [], []],
                                                    ["float", "float", "long int", "", "Scalar", "Scalar", "float"], ()))
    assert fwd.kind is OpKind.LOSS and fwd.input_bytes == n * 8 + n * 32 and fwd.output_bytes == n * 4
    assert bwd.output_bytes == n * c * 4 and bwd.input_bytes == n * 8


def test_nll_loss_forward_is_one_latency_bound_block():
    """ATen's reduced nll_loss forward runs ONE block of nll_loss_threads(N) threads (2^round(log2(N/16))
    in 32..1024), two dependent loads per row (target, then the logit it indexes): rounds x N / threads
    memory latencies. The H100 / H200 traces take 18.7 / 18.5 us for N = 4096 (simhw: about 13)."""
    from simhw.trace.memops import nll_loss_threads
    from simhw.trace.ops import Args
    from simhw.trace.rules import lookup
    from simhw.workload.graph import Op, shape

    assert [nll_loss_threads(n) for n in (1, 512, 4096, 6000, 1 << 20)] == [32, 32, 256, 512, 1024]
    n, c = 4096, 32000
    types = ["float", "long int", "", "Scalar", "Scalar"]
    mean = lookup("aten::nll_loss_forward").fn(Args([[n, c], [n], [], [], []], types, ("", "", "", "1", "-100")))
    none = lookup("aten::nll_loss_forward").fn(Args([[n, c], [n], [], [], []], types, ("", "", "", "0", "-100")))
    assert mean.shape == {"elements": n, "load_bytes": 4, "threads": 256, "rounds": 2.0}
    assert none.shape == {"elements": n}                   # one thread per row: not this kernel
    hw = load_hw("h100")
    op = Op("nll", OpKind.LOSS, Phase.FWD, -1, mean.flops, DType.FP32, input_bytes=mean.input_bytes,
            output_bytes=mean.output_bytes, shape=shape(**mean.shape))
    # the round trips queue behind the bytes' transfer (cost/latency.py): the two times add
    body = 2 * n / 256 * hw.main_memory.latency_s + memory_time_s(op.bytes, hw, hw.efficiency.elementwise_memory_fraction)
    assert op_cost(op, hw).time_s == pytest.approx(body + hw.efficiency.launch_s, rel=1e-9)


_MTA = ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::"
        "TensorListMetadata<{d}>, at::native::(anonymous namespace)::{f}<{t}, {d}, {r}, 0>, std::plus<{t}>, {t}>")
_ADAM = ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::"
         "FusedOptimizerTensorListMetadata<4>, at::native::(anonymous namespace)::FusedAdamMathFunctor<float, 4, "
         "(at::native::ADAM_MODE)1, false>, double*, double, double, double, double, double, bool, float*, float*>")


def test_foreach_ops_are_sized_from_their_multi_tensor_apply_grids(tmp_path):
    """The profiler never records TensorList shapes: a foreach or fused-optimizer op is sized from
    its multi_tensor_apply launches (one CTA per 65,536-element chunk) and its functor's lists."""
    ev = [_op("Optimizer.step#AdamW.step", 0.0, 900.0, cat="user_annotation"),
          _op("aten::_foreach_add_", 10.0, 50.0, dims=[[], [], []], types=["TensorList", "TensorList", "Scalar"]),
          _launch(12.0, 200), _gpu(_MTA.format(d=2, f="BinaryOpListAlphaFunctor", t="float", r=2), 20.0, 90.0, 200,
                                   grid=[320, 1, 1], block=[512, 1, 1]),
          _launch(14.0, 201), _gpu(_MTA.format(d=2, f="BinaryOpListAlphaFunctor", t="float", r=2), 111.0, 30.0, 201,
                                   grid=[100, 1, 1], block=[512, 1, 1]),
          _op("aten::_foreach_mul_", 100.0, 20.0, dims=[[], []], types=["TensorList", "Scalar"]),
          _launch(102.0, 202), _gpu(_MTA.format(d=1, f="BinaryOpScalarFunctor", t="c10::BFloat16", r=1), 150.0, 20.0,
                                    202, grid=[64, 1, 1], block=[512, 1, 1]),
          _op("aten::_fused_adamw_", 200.0, 40.0, dims=[[]] * 5, types=["TensorList"] * 4 + ["Scalar"]),
          _launch(202.0, 203), _gpu(_ADAM, 250.0, 100.0, 203, grid=[200, 1, 1], block=[512, 1, 1]),
          _op("aten::_foreach_sqrt", 300.0, 20.0, dims=[[]], types=["TensorList"]),
          _launch(302.0, 204), _gpu("some_other_kernel", 350.0, 10.0, 204, grid=[8, 1, 1])]
    doc = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}], "traceEvents": ev}
    path = tmp_path / "opt.pt.trace.json"
    path.write_text(json.dumps(doc))
    a = _analysis(load_trace(path))
    (add,) = by_name(a.ops, "aten::_foreach_add_")
    assert add.phase is Phase.OPTIMIZER and add.est.kind is OpKind.OPTIMIZER and add.kernels == 2
    assert add.est.shape["elements"] == 420 * 65536
    assert add.est.input_bytes == 420 * 65536 * 2 * 4 and add.est.output_bytes == 420 * 65536 * 4
    (mul,) = by_name(a.ops, "aten::_foreach_mul_")
    assert mul.est.dtype is DType.BF16 and mul.est.input_bytes == mul.est.output_bytes == 64 * 65536 * 2
    (adam,) = by_name(a.ops, "aten::_fused_adamw_")
    assert adam.est.input_bytes == 200 * 65536 * 4 * 4 and adam.est.output_bytes == 200 * 65536 * 3 * 4
    assert not by_name(a.ops, "aten::_foreach_sqrt")           # not a multi_tensor_apply launch
    assert any(r[0] == "aten::_foreach_sqrt" and r[3] == "shapes not recorded" for r in a.unmapped_rows())
    graph, _ = trace_to_graph(path)                            # two kernels: two launches
    op = next(o for o in graph.ops if o.name == "aten::_foreach_add_")
    h100 = load_hw("h100")
    assert op.shape["launches"] == 2.0
    assert op_cost(op, h100).time_s == pytest.approx(
        op_cost(dataclasses.replace(op, shape={k: v for k, v in op.shape.items() if k != "launches"}), h100).time_s
        + h100.efficiency.launch_s, rel=1e-12)


def test_the_h100_training_steps_optimizer_is_costed_within_a_quarter():
    """simhw's own H100 trace (validate/data/h100-2026-11-26): its foreach AdamW ops, 30% of the
    step's kernel time, are costed, each within 25% of its measured kernels."""
    path = ROOT / "validate" / "data" / "h100-2026-11-26" / "train_step_trace.json.gz"
    df = validate_trace(path, load_hw("h100"))
    opt = df[df["kind"] == "optimizer"]
    assert len(opt) == 8
    ratio = opt["predicted_s"] / opt["measured_s"]
    assert ratio.between(0.75, 1.25).all(), ratio.tolist()


def test_autocast_casts_inside_a_gemm_are_costed_as_copies_of_their_own(tmp_path):
    """Under autocast, aten::linear on fp32 tensors casts its weight (aten::to -> _to_copy ->
    copy_) before the bf16 GEMM: the cast's kernel is priced as a copy of its own, and the GEMM
    keeps only its own kernel's time."""
    F32 = "float"
    ev = [_op("aten::linear", 10.0, 200.0, dims=[[512, 1024], [4096, 1024], []], types=[F32, F32, ""], seq=5, fwd=0),
          _op("aten::to", 12.0, 40.0, dims=[[4096, 1024], [], [], [], []], types=[F32, "Scalar", "Scalar", "Scalar", ""]),
          _op("aten::_to_copy", 13.0, 38.0, dims=[[4096, 1024], [], [], [], [], [], []], types=[F32] + ["Scalar"] * 6),
          _op("aten::copy_", 15.0, 30.0, dims=[[4096, 1024], [4096, 1024], []], types=[BF, F32, "Scalar"]),
          _launch(16.0, 300), _gpu("unrolled_elementwise_kernel<copy>", 60.0, 9.0, 300),
          _op("aten::linear", 60.0, 100.0, dims=[[512, 1024], [4096, 1024], []], types=[BF, BF, ""]),
          _op("aten::mm", 62.0, 90.0, dims=[[512, 1024], [1024, 4096]], types=[BF, BF]),
          _launch(64.0, 301), _gpu("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n", 80.0, 20.0, 301)]
    doc = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}], "traceEvents": ev}
    path = tmp_path / "autocast.pt.trace.json"
    path.write_text(json.dumps(doc))
    a = _analysis(load_trace(path))
    (lin,) = by_name(a.ops, "aten::linear")
    (cast,) = by_name(a.ops, "aten::copy_")
    assert lin.est.kind is OpKind.GEMM and lin.est.dtype is DType.BF16
    assert lin.kernels == 1 and lin.gpu_s == pytest.approx(20e-6)
    assert cast.kernels == 1 and cast.gpu_s == pytest.approx(9e-6) and cast.phase is Phase.FWD
    assert cast.est.input_bytes + cast.est.output_bytes == pytest.approx(4096 * 1024 * (4 + 2))


def test_a_norm_backward_reads_its_output_gradient_and_input_twice(tmp_path):
    """native_layer_norm_backward: the grad-input pass reads dY, X, mean, rstd and gamma and writes
    dX; the gamma/beta pass reads dY and X again."""
    from simhw.trace.memops import norm_backward
    from simhw.trace.ops import Args

    dims = [[4096, 1024], [4096, 1024], [1024], [4096, 1], [4096, 1], [1024], [1024], []]
    types = [BF, BF, "", "float", "float", BF, BF, "GenericList"]
    est = norm_backward(Args(dims, types, []))
    x = 4096 * 1024 * 2
    assert est.kind is OpKind.NORM
    assert est.input_bytes == pytest.approx(2 * x + 2 * 4096 * 4 + 2 * 1024 * 2 + 2 * x)
    assert est.output_bytes == pytest.approx(x)


@pytest.mark.parametrize("row, elsize_name, extra_reads", [(32000, "float", 2), (4096, BF, 0), (512, "float", 0),
                                                          (16384, "float", 2)])
def test_long_softmax_rows_are_read_three_times(row, elsize_name, extra_reads):
    """PyTorch's softmax reads a row once when it fits a warp (<= 1024) or a block's shared memory
    (48 KB), and three times otherwise (max, sum of exponentials, output); its backward then reads
    the gradient twice."""
    from simhw.trace.memops import softmax
    from simhw.trace.ops import Args

    size = 2 if elsize_name == BF else 4
    x = 4096 * row * size
    fwd = softmax(5.0)(Args([[4096, row], [], []], [elsize_name, "Scalar", "Scalar"], ["", "1", "False"]))
    assert fwd.input_bytes == pytest.approx((1 + extra_reads) * x) and fwd.output_bytes == pytest.approx(x)
    bwd = softmax(4.0, backward=True)(Args([[4096, row], [4096, row], [], []], [elsize_name] * 2 + ["Scalar"] * 2,
                                           ["", "", "1", "6"]))
    assert bwd.input_bytes == pytest.approx((2 + extra_reads // 2) * x)


def test_gelu_is_priced_by_its_instructions_and_matches_the_traces():
    """GELU's erf costs about 40 FP32 instructions per element (80 FLOPs at the peak's 2 per FMA):
    the bf16 GELU of the H100 and H200 training-step traces (16.8M elements, the same 25 us on both:
    SM-bound) comes out within 12%."""
    from simhw.trace.rules import lookup

    rule = lookup("aten::gelu")
    from simhw.trace.ops import Args
    est = rule.fn(Args([[4, 1024, 4096], []], [BF, ""], ["", ""]))
    assert est.flops == pytest.approx(80.0 * 4 * 1024 * 4096)
    for gpu in ("h100", "h200"):
        df = validate_trace(ROOT / "validate" / "data" / f"{gpu}-2026-11-26" / "train_step_trace.json.gz", load_hw(gpu))
        g = df[df["name"] == "aten::gelu"]
        assert len(g) == 4 and ((g["predicted_s"] / g["measured_s"] - 1).abs() < 0.12).all(), gpu
