"""Low-precision linears (``precision.recipe``: FP8 per-tensor, blockwise, MXFP8, NVFP4): the graph
pass, its memory, its errors, and published training throughputs it is checked against (not fitted):

- torchao.float8 README (pytorch/ao, torchao/float8/README.md), H100: a compiled Float8Linear with
  dynamic tensorwise scaling against bf16, forward + backward: 0.80x at M, K, N = 1024, 2048, 1024;
  1.39x at 4096, 8192, 16384. Llama3-8B on 8 H100 (FSDP2, torch.compile, per-op SAC, batch 1 x 8192):
  6150 tok/s bf16, 7689.5 tensorwise float8 (1.25x).
- Megatron-Bridge performance summary (NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md,
  25.11 container), tokens / s / GPU: Llama3-8B FP8 current scaling, GBS 128, seq 8192, DGX-H100
  (MBS 1, FSDP) 14451 and DGX-B200 (MBS 2) 30624; Llama3-70B on 64 GB200, GBS 256, MBS 1, TP 2,
  PP 4, VP 5 (26.02 container): MXFP8 3613, NVFP4 4458. DeepSeek-V3 (without MTP) on 256 GB200, GBS
  4096, MBS 1, seq 4096 (25.11): BF16 with PP 4, EP 64: 3139; MXFP8 with PP 8, EP 32: 4018.
"""
from dataclasses import replace

import pytest

from simhw.cli import main
from simhw.cost.estimate import estimate
from simhw.cost.memory import memory_breakdown, saved_tensor_bytes
from simhw.cost.power import PowerState, power_limited
from simhw.cost.roofline import op_cost
from simhw.errors import MissingPeakError, WorkloadError
from simhw.spec.load import load_hw
from simhw.spec.model import DType
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind, Phase, shape
from simhw.workload.precision import linear_ops
from simhw.workload.spec import Precision, Recipe
from simhw.workload.transformer import build_graph

TRAIN7B = "workloads/llama2-7b-train.yaml"


def _wl(recipe="none", **raw):
    base = {"model": "llama3-8b", "mode": "train", "seq_len": 8192, "micro_batch": 1, "global_batch": 8,
            "devices": 8, "dtype": "bf16", "optimizer": "adamw", "precision": recipe}
    base.update(raw)
    return workload_from_dict(base)


def _tokens_per_gpu(wl, hw):
    r = estimate(wl, load_hw(hw))
    return r.tokens_per_s / wl.devices


# --- the graph --------------------------------------------------------------------------------

def test_layer_linears_run_in_the_recipe_and_the_rest_stays_in_the_dtype():
    g = build_graph(_wl("fp8-current"), compact=True)
    gemms = [op for op in g.ops if op.kind is OpKind.GEMM and op.phase is not Phase.OPTIMIZER]
    layer = [op for op in gemms if op.layer >= 0]
    assert layer and all(op.dtype is DType.FP8 for op in layer)
    assert all(op.dtype is DType.BF16 for op in gemms if op.name.startswith("lm_head"))
    assert all(op.dtype is DType.BF16 for op in g.ops if op.kind is OpKind.ATTENTION)
    # every forward GEMM input and every incoming gradient is cast once; the weights once a step (fused)
    fwd = [op for op in layer if op.phase is Phase.FWD]
    assert sum(op.name.startswith("quant_in.") for op in g.ops) == len(fwd)
    assert sum(op.name.startswith("quant_grad.") for op in g.ops) == len(fwd)
    assert [op.phase for op in g.ops if op.name == "quant_weights"] == [Phase.OPTIMIZER]
    # the model's FLOPs do not change
    plain = build_graph(_wl(), compact=True)
    assert sum(op.mflops * op.count for op in g.ops) == pytest.approx(sum(op.mflops * op.count for op in plain.ops))


def test_moe_router_stays_in_the_dtype():
    g = build_graph(_wl("mxfp8", model="qwen3-30b-a3b", devices=8, seq_len=4096), compact=True)
    assert all(op.dtype is DType.BF16 for op in g.ops if op.name.startswith("moe_router"))
    assert any(op.dtype is DType.FP8 and op.name.startswith("mlp_up") for op in g.ops)


def test_cast_bytes_follow_the_recipe():
    """FP8 current scaling: an amax pass and a cast that writes row- and column-wise copies (2 + 2
    read, 2 x 1 written per element); delayed scaling skips the amax pass; MXFP8 writes a scale per
    32; NVFP4 half a byte plus a scale per 16; serving engines quantize inside the producing kernels."""
    def cast(recipe):
        op = next(op for op in build_graph(_wl(recipe), compact=True).ops if op.name.startswith("quant_in."))
        el = op.shape["elements"]
        return op.input_bytes / el, op.output_bytes / el
    assert cast("fp8-current") == pytest.approx((4.0, 2.0))
    assert cast("fp8-delayed") == pytest.approx((2.0, 2.0))
    assert cast("mxfp8") == pytest.approx((2.0, 2 * (1 + 1 / 32)))
    assert cast("nvfp4") == pytest.approx((4.0, 2 * (0.5 + 1 / 16)))
    serving = build_graph(_wl("fp8-blockwise", mode="prefill", optimizer="none"), compact=True).ops
    assert not any(op.name.startswith("quant") for op in serving)      # fused into the producing kernels
    assert any(op.dtype is DType.FP8 and op.name.startswith("qkv") for op in serving)


def test_blackwell_fp8_casts_write_no_transposed_copy():
    """sm100 FP8 GEMMs take any operand layout (efficiency.fp8_any_layout), so a per-tensor cast
    writes one copy there and two on Hopper; block-scaled recipes need both copies everywhere."""
    cast = next(op for op in build_graph(_wl("fp8-current"), compact=True).ops if op.name.startswith("quant_in."))
    assert cast.shape["transpose_bytes"] == pytest.approx(cast.shape["elements"])
    one_copy = replace(cast, output_bytes=cast.output_bytes / 2, shape=shape(elements=cast.shape["elements"]))
    b200, h100 = load_hw("b200"), load_hw("h100")
    assert op_cost(cast, b200).time_s == pytest.approx(op_cost(one_copy, b200).time_s)
    assert op_cost(cast, h100).time_s > 1.1 * op_cost(one_copy, h100).time_s
    assert "transpose_bytes" not in next(op for op in build_graph(_wl("mxfp8"), compact=True).ops
                                         if op.name.startswith("quant_in.")).shape
    stored = {"recipe": "fp8-current", "quantized_weights": False}
    hopper, blackwell = (memory_breakdown(_wl(stored), load_hw(hw)).parameters_bytes for hw in ("h100", "b200"))
    plain = memory_breakdown(_wl()).parameters_bytes
    assert blackwell - plain == pytest.approx((hopper - plain) / 2)
    # weights kept only in FP8 (Megatron-Bridge's fp8 param gather, the default): data and its
    # transpose take the bf16 copy's two bytes on Hopper, one on Blackwell
    m = _wl().model
    layers = plain - (m.embedding_params() + m.head_params()) * 2
    hopper, blackwell = (memory_breakdown(_wl("fp8-current"), load_hw(hw)).parameters_bytes for hw in ("h100", "b200"))
    assert hopper == pytest.approx(plain) and blackwell == pytest.approx(plain - layers / 2)


def test_eager_frameworks_cast_weights_every_forward_and_inputs_again_in_backward():
    """torchao's Float8Linear: row-wise casts in forward, the weight cast again for dgrad and the
    input for wgrad; Transformer Engine (fused): weights once a step, no second casts."""
    compiled = build_graph(_wl("fp8-current", framework="compiled"), compact=True)
    assert not any(op.name == "quant_weights" for op in compiled.ops)
    names = [op.name.split(".")[0] for op in compiled.ops if op.name.startswith("quant")]
    fwd = sum(op.phase is Phase.FWD and op.kind is OpKind.GEMM and op.layer >= 0 for op in compiled.ops)
    assert {n: names.count(n) for n in set(names)} == {"quant_in": fwd, "quant_w": fwd, "quant_grad": fwd,
                                                       "quant_w_bwd": fwd, "quant_in_bwd": fwd}
    cast = next(op for op in compiled.ops if op.name.startswith("quant_in."))
    assert cast.output_bytes == pytest.approx(cast.shape["elements"])      # one row-wise FP8 copy
    fused = [op.name.split(".")[0] for op in build_graph(_wl("fp8-current"), compact=True).ops]
    assert "quant_w_bwd" not in fused and "quant_in_bwd" not in fused


def test_high_precision_layers_keep_their_linears_and_the_compact_graph_agrees():
    wl = _wl("nvfp4", precision={"recipe": "nvfp4", "high_precision_layers": 4})
    full, compact = build_graph(wl), build_graph(wl, compact=True)
    assert max(op.layer for op in full.ops if op.dtype is DType.FP4) == wl.model.layers - 5
    # the compact graph's group of the last four layers starts at layer 28, all in bf16
    last = [op for op in compact.ops if op.layer == wl.model.layers - 4 and op.kind is OpKind.GEMM]
    assert last and all(op.dtype is DType.BF16 and op.count == 4 for op in last)
    total = [sum(op.flops * op.count for op in g.ops if op.dtype is DType.FP4) for g in (full, compact)]
    assert total[0] == pytest.approx(total[1])


# --- memory -----------------------------------------------------------------------------------

def test_training_memory_holds_the_quantized_weight_cache_and_smaller_saved_inputs():
    bf16, fp8 = _wl(), _wl("fp8-current")
    m_bf16, m_fp8 = memory_breakdown(bf16), memory_breakdown(fp8)
    # Transformer Engine keeps the fp8 weights, row- and column-wise, across the micro-batches: beside
    # the bf16 weights, or (fp8 param gather, Megatron-Bridge's default) instead of them
    layers = m_bf16.parameters_bytes - (bf16.model.embedding_params() + bf16.model.head_params()) * 2
    beside = memory_breakdown(_wl({"recipe": "fp8-current", "quantized_weights": False}))
    assert beside.parameters_bytes - m_bf16.parameters_bytes == pytest.approx(2 * layers / 2, rel=0.01)
    assert m_fp8.parameters_bytes == pytest.approx(m_bf16.parameters_bytes)
    # MXFP8's two copies carry their E8M0 scales; blockwise FP8 keeps the bf16 weights (no param gather)
    mx, block = (memory_breakdown(_wl(r)).parameters_bytes - m_bf16.parameters_bytes for r in ("mxfp8", "fp8-blockwise"))
    assert mx == pytest.approx(2 * layers / 2 * (1 + 1 / 32) - layers, rel=0.01)
    assert block == pytest.approx(2 * layers / 2 * (1 + 4 / 128**2), rel=0.01)
    # torchao keeps no quantized weights and saves its linears' inputs in bf16
    eager, plain = (memory_breakdown(_wl(r, framework="compiled")) for r in ("fp8-current", "none"))
    assert eager.parameters_bytes == pytest.approx(plain.parameters_bytes)
    assert eager.activations_bytes == pytest.approx(plain.activations_bytes)
    # the linears' inputs are saved quantized; FlashAttention still keeps its bf16 output
    s16, s8 = saved_tensor_bytes(bf16), saved_tensor_bytes(fp8)
    assert s8["attn_norm"] == pytest.approx(s16["attn_norm"] / 2)
    assert s8["mlp_mid"] == pytest.approx(s16["mlp_mid"] / 2)
    assert s8["attn_out"] == pytest.approx(s16["attn_out"] * 1.5)
    assert m_fp8.activations_bytes < m_bf16.activations_bytes


def test_serving_stores_the_layer_weights_quantized():
    raw = dict(mode="decode", optimizer="none", devices=1, micro_batch=8, global_batch=8, seq_len=2048)
    plain, fp8 = memory_breakdown(_wl(**raw)), memory_breakdown(_wl("fp8-current", **raw))
    m = _wl(**raw).model
    other = (m.embedding_params() + m.head_params()) * 2
    assert fp8.parameters_bytes - other == pytest.approx((plain.parameters_bytes - other) / 2, rel=1e-6)


# --- published checks (not fitted) ------------------------------------------------------------

def _linear_s(m, k, n, recipe):
    hw = load_hw("h100")
    wl = _wl(recipe, framework="compiled")
    return sum(power_limited(op_cost(op, hw), hw, PowerState.BURST).time_s for op in linear_ops(wl, m, k, n))


def test_torchao_float8_linear_speedups_on_h100():
    """torchao's microbenchmark: 0.80x for a small linear (casts cost more than the faster GEMMs
    save), 1.39x for a large one. simhw 0.63x and 1.50x. Today's Float8Linear saves its input and
    weight in bf16 and casts both again in backward (five casts per linear); under torch.compile
    some of them share kernels, which simhw prices one launch each, so small linears come out
    slower than measured."""
    small = _linear_s(1024, 2048, 1024, "none") / _linear_s(1024, 2048, 1024, "fp8-current")
    large = _linear_s(4096, 8192, 16384, "none") / _linear_s(4096, 8192, 16384, "fp8-current")
    assert small < 0.85 and small == pytest.approx(0.80, rel=0.25)
    assert large == pytest.approx(1.39, rel=0.10)


def test_torchao_llama3_8b_float8_training_speedup_and_memory_on_8_h100():
    """1.25x measured, simhw 1.28x (torchtitan's per-op checkpointing, recompute: op); peak memory
    47.65 GB bf16 and 47.77 GB float8 (the linears save bf16 inputs): simhw's is the same for both
    (35 GB: what the policy must save; under torch.compile the partitioner may save more)."""
    raw = dict(framework="compiled", memory={"recompute": "op", "zero_stage": 3})
    fp8, bf16 = _wl("fp8-current", **raw), _wl(**raw)
    speedup = _tokens_per_gpu(fp8, "dgx-h100") / _tokens_per_gpu(bf16, "dgx-h100")
    assert speedup == pytest.approx(7689.5 / 6150, rel=0.10)
    hw = load_hw("dgx-h100")
    assert memory_breakdown(fp8, hw).peak_bytes == pytest.approx(memory_breakdown(bf16, hw).peak_bytes, rel=0.01)


def test_megatron_bridge_llama3_8b_fp8_throughput():
    """simhw: H100 +4%, B200 +9% against the published tokens / s / GPU."""
    h100 = _wl("fp8-current", global_batch=128, memory={"zero_stage": 3})
    b200 = _wl("fp8-current", global_batch=128, micro_batch=2, memory={"zero_stage": 1})
    assert _tokens_per_gpu(h100, "dgx-h100") == pytest.approx(14451, rel=0.10)
    assert _tokens_per_gpu(b200, "dgx-b200") == pytest.approx(30624, rel=0.15)


def test_megatron_bridge_llama3_70b_nvfp4_over_mxfp8_on_gb200():
    """Published 4458 / 3613 = 1.23x; simhw 1.39x (both absolute rates 25-40% high on the GB200
    spec, whose FP4 GEMMs simhw prices at 71% of peak where cuBLAS reaches about 58%: DeepGEMM
    PR 348's B200 table)."""
    raw = dict(model="llama3-70b", devices=64, global_batch=256, memory={"zero_stage": 1},
               parallelism={"tp": 2, "pp": 4, "interleave": 5, "schedule": "interleaved", "sp": True})
    ratio = _tokens_per_gpu(_wl("nvfp4", **raw), "gb200-nvl72") / _tokens_per_gpu(_wl("mxfp8", **raw), "gb200-nvl72")
    assert ratio == pytest.approx(4458 / 3613, rel=0.12)
    assert ratio > 1.1


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("sets, needle", [
    (["precision=fp4x"], "precision.recipe: 'fp4x' is not allowed"),
    (["precision.high_precision_layers=99"], "precision.high_precision_layers"),
    (["precision.scale=2"], "unknown key 'scale'"),
    (["precision=fp8-current", "dtype=fp8"], "does not combine with dtype fp8"),
])
def test_bad_precision_is_a_one_line_error(sets, needle, capsys):
    args = ["estimate", TRAIN7B, "--hw", "h100"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("recipe, hw", [("nvfp4", "h100"), ("mxfp8", "h200"), ("fp8-current", "a100")])
def test_a_recipe_needs_its_tensor_cores(recipe, hw, capsys):
    with pytest.raises(MissingPeakError, match=recipe):
        estimate(replace(_wl(), precision=Precision(Recipe(recipe))), load_hw(hw))
    assert main(["estimate", TRAIN7B, "--hw", hw, "--set", f"precision={recipe}"]) == 2
    assert "tensor cores" in capsys.readouterr().err


def test_weight_only_quantization_and_a_recipe_do_not_combine(capsys):
    assert main(["estimate", "workloads/llama2-70b-decode.yaml", "--hw", "h100", "--set", "precision=fp8-current",
                 "--set", "memory.weight_bits=4"]) == 2
    assert "weight_bits" in capsys.readouterr().err


def test_training_in_dtype_fp8_points_at_the_recipes(capsys):
    assert main(["estimate", TRAIN7B, "--hw", "h100", "--set", "dtype=fp8"]) == 0
    assert "precision=fp8-current" in capsys.readouterr().err



def test_megatron_bridge_deepseek_v3_mxfp8_over_bf16_on_gb200():
    """Published 4018 / 3139 = 1.28x, each in its own configuration (PP 4 and 8, both VP 4: uneven
    chunks of DeepSeek-V3's 61 layers), both "w/o MTP" (the table's model name: mtp_layers 0);
    simhw 1.28x; both absolute rates are about 20% high on the GB200 spec, as the Llama3-70B ones."""
    raw = dict(model={"base": "deepseek-v3", "mtp_layers": 0}, devices=256, seq_len=4096, global_batch=4096,
               memory={"zero_stage": 1})
    bf16 = _tokens_per_gpu(_wl(parallelism={"pp": 4, "interleave": 4, "ep": 64}, **raw), "gb200-nvl72")
    mx = _tokens_per_gpu(_wl("mxfp8", parallelism={"pp": 8, "interleave": 4, "ep": 32}, **raw), "gb200-nvl72")
    assert mx / bf16 == pytest.approx(4018 / 3139, rel=0.05)
    assert bf16 == pytest.approx(3139, rel=0.30) and mx == pytest.approx(4018, rel=0.30)


@pytest.mark.parametrize("dtype,plain,distributed", [("bf16", 18, 6 + 12 / 8), ("fp16", 20, 4 + 16 / 8),
                                                      ("fp32", 16, 8 + 8 / 8)])
def test_megatron_keeps_the_bytes_per_parameter_of_its_distributed_optimizer_table(dtype, plain, distributed):
    """Megatron-LM's README (distributed optimizer): bf16 param, fp32 grads 18 B per parameter, 6 + 12/d
    with the distributed optimizer; fp16 param, fp16 grads 20, 4 + 16/d; fp32 16, 8 + 8/d. Eager
    PyTorch keeps the ZeRO paper's 2 + 2 + 12."""
    from simhw.cost.memory import static_bytes_per_param
    for zero, want in ((0, plain), (1, distributed)):
        wl = _wl(dtype=dtype, memory={"zero_stage": zero})
        assert sum(static_bytes_per_param(wl)) == pytest.approx(want)
    assert sum(static_bytes_per_param(_wl(framework="eager"))) == pytest.approx(16)


@pytest.mark.parametrize("precision,framework,words", [
    ({"recipe": "none", "quantized_weights": True}, "fused", "no recipe"),
    ({"recipe": "fp8-current", "quantized_weights": True}, "eager", "framework: fused"),
    ({"recipe": "fp8-current", "quantized_weights": "yes"}, "fused", "true or false"),
])
def test_quantized_weights_where_they_cannot_be_is_an_error(precision, framework, words):
    with pytest.raises(WorkloadError, match=words):
        _wl(precision, framework=framework)


def test_sharded_serving_weights_are_quantized_shard_by_shard():
    """ZeRO-3 sharding of a served model's FP8 weights: each device holds its shard of them, the
    saving as sharded as the weights (it once went negative and stopped the simulation)."""
    raw = dict(mode="prefill", optimizer="none", devices=8, micro_batch=2, global_batch=8, seq_len=512)
    plain = memory_breakdown(_wl(**raw, memory={"zero_stage": 3}))
    fp8 = memory_breakdown(_wl("fp8-current", **raw, memory={"zero_stage": 3}))
    m = _wl(**raw).model
    other = (m.embedding_params() + m.head_params()) * 2 / 8
    assert 0 < fp8.parameters_bytes < plain.parameters_bytes
    assert fp8.parameters_bytes - other == pytest.approx((plain.parameters_bytes - other) / 2, rel=1e-6)


def test_megatron_gathers_weights_it_stores_in_fp8_in_fp8():
    """ZeRO's parameter all-gather moves what the device stores: FP8 for the layers' weights under a
    per-tensor recipe with fp8 param gather (Megatron-Bridge's default), the dtype's otherwise."""
    from simhw.cost.memory import _params_parts, gathered_weight_bytes, params_per_device
    raw = {"memory": {"zero_stage": 1}}
    plain, fp8 = _wl(**raw), _wl("fp8-current", **raw)
    p = params_per_device(plain, sharded_by_zero=False)
    assert gathered_weight_bytes(plain) == pytest.approx(2 * p)
    assert gathered_weight_bytes(fp8) == pytest.approx(2 * p - _params_parts(fp8)[0])
    assert gathered_weight_bytes(_wl({"recipe": "fp8-current", "quantized_weights": False}, **raw)) == pytest.approx(2 * p)
    assert gathered_weight_bytes(_wl("fp8-current", framework="compiled", **raw)) == pytest.approx(2 * p)
    gathers = [op for op in build_graph(fp8, compact=True).ops if op.name.endswith("param_gather")]
    assert gathers and gathers[0].shape["bytes"] < 0.7 * 2 * p
