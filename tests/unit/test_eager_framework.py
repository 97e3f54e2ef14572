"""``framework: eager`` (workload/eager.py): the kernels eager PyTorch training adds to a step."""
from __future__ import annotations

import pytest

import simhw
from simhw.cost.rowwise import ROW_OP_CODES, RowOp
from simhw.errors import WorkloadError
from simhw.spec.model import DType
from simhw.workload.eager import FOREACH_ADAMW_BYTES_PER_PARAM
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind, Phase
from simhw.workload.transformer import build_graph


def gpt(framework: str = "eager", **over) -> dict:
    wl = {"name": "gpt", "mode": "train", "dtype": "bf16", "optimizer": "adamw", "framework": framework,
          "model": {"layers": 4, "hidden": 1024, "heads": 16, "ffn": 4096, "vocab": 32000, "activation": "gelu",
                    "norm": "layernorm", "position": "none", "tied_embeddings": False, "bias": False},
          "seq_len": 1024, "micro_batch": 4, "global_batch": 4, "devices": 1}
    wl.update(over)
    return wl


def graph(framework: str = "eager", **over):
    return build_graph(workload_from_dict(gpt(framework, **over), "test"))


def test_autocast_casts_every_forward_weight_and_accumulates_every_weight_gradient():
    g = graph()
    weights = [op for op in g.ops if op.kind is OpKind.GEMM and op.weight_bytes > 0 and op.phase is Phase.FWD]
    casts = [op for op in g.ops if op.name.startswith("autocast.")]
    assert len(casts) == len(weights) > 0
    assert all(c.input_bytes == 2 * c.output_bytes for c in casts)          # fp32 read, bf16 written
    wgrads = [op for op in g.ops if op.kind is OpKind.GEMM and op.name.endswith(".wgrad")]
    assert len([op for op in g.ops if op.name.startswith("accumulate_grad.")]) == len(wgrads)
    assert not any(op.name.startswith(("autocast.", "accumulate_grad.")) for op in graph("fused").ops)


def test_norms_run_on_the_fp32_residual_stream_as_row_kernels():
    norms = [op for op in graph().ops if op.kind is OpKind.NORM]
    assert norms and all(op.dtype is DType.FP32 and op.shape["row"] == 1024 for op in norms)
    codes = {op.phase: op.shape["row_op"] for op in norms}
    assert codes[Phase.FWD] == ROW_OP_CODES[RowOp.LAYER_NORM]
    assert codes[Phase.BWD] == ROW_OP_CODES[RowOp.LAYER_NORM_BACKWARD]


def test_the_loss_is_a_cast_a_log_softmax_over_the_vocabulary_and_nll():
    names = [op.name for op in graph().ops]
    for name in ("logits_float", "log_softmax", "nll_loss", "nll_loss.bwd", "log_softmax.bwd", "logits_float.bwd"):
        assert name in names
    lsm = next(op for op in graph().ops if op.name == "log_softmax")
    assert lsm.shape["row"] == 32000 and lsm.shape["elements"] == 4 * 1024 * 32000
    assert "loss" not in names and "loss" in [op.name for op in graph("fused").ops]


def test_foreach_adamw_moves_84_bytes_per_parameter():
    eager = next(op for op in graph().ops if op.name == "optimizer_step")
    fused = next(op for op in graph("fused").ops if op.name == "optimizer_step")
    params = eager.shape["elements"]
    assert eager.bytes == pytest.approx(FOREACH_ADAMW_BYTES_PER_PARAM * params) and FOREACH_ADAMW_BYTES_PER_PARAM == 84
    assert eager.bytes > 2.5 * fused.bytes


def test_eager_steps_take_longer_than_fused_ones_and_inference_is_unchanged():
    h100 = simhw.load_hw("h100")
    eager = simhw.estimate(workload_from_dict(gpt(), "t"), h100).step_time_s
    fused = simhw.estimate(workload_from_dict(gpt("fused"), "t"), h100).step_time_s
    assert eager > 1.1 * fused
    prefill = {k: v for k, v in gpt().items() if k not in ("optimizer", "global_batch")}
    prefill.update(mode="prefill")
    p_eager = build_graph(workload_from_dict(prefill, "t"))
    p_fused = build_graph(workload_from_dict({**prefill, "framework": "fused"}, "t"))
    assert p_eager.ops == p_fused.ops


def test_an_unknown_framework_is_a_clear_error():
    with pytest.raises(WorkloadError, match="framework: 'pytorch' is not allowed; choose one of: fused, eager"):
        workload_from_dict(gpt("pytorch"), "w.yaml")


def test_foreach_adamw_holds_one_more_fp32_list_during_the_step():
    from simhw.cost.memory import memory_breakdown

    eager = memory_breakdown(workload_from_dict(gpt(memory={"recompute": "full"}), "t"))
    fused = memory_breakdown(workload_from_dict(gpt("fused", memory={"recompute": "full"}), "t"))
    params = eager.parameters_bytes / 2          # bf16 weights in the model's accounting
    assert eager.optimizer_transient_bytes == pytest.approx(4 * params) and fused.optimizer_transient_bytes == 0
    static = eager.parameters_bytes + eager.gradients_bytes + eager.optimizer_bytes
    assert eager.peak_bytes == pytest.approx(static + max(eager.activations_bytes + eager.logits_bytes,
                                                          eager.optimizer_transient_bytes))


def test_a_gated_mlp_backward_concatenates_the_two_halves_gradients():
    """chunk's backward is a cat: one more copy of the 2 x ffn gradient in eager PyTorch only."""
    swiglu = dict(model={"layers": 2, "hidden": 1024, "heads": 16, "ffn": 2816, "vocab": 32000, "activation": "swiglu",
                         "norm": "rmsnorm", "position": "none", "tied_embeddings": False, "bias": False})
    eager = {op.name: op for op in graph(**swiglu).ops}
    cat = eager["chunk_cat.mlp_act.0.bwd"]
    assert cat.input_bytes == cat.output_bytes == 2 * 4 * 1024 * 2816 * 2
    assert not any(n.startswith("chunk_cat.") for n in (op.name for op in graph("compiled", **swiglu).ops))


def test_the_attention_backward_gathers_the_qkv_gradients_with_one_copy():
    """unbind's backward is a stack (aten::stack once per layer in the profiled H100 steps); Inductor
    runs it as one kernel too; the fused framework writes the gradient in place."""
    for framework in ("eager", "compiled"):
        ops = {op.name: op for op in graph(framework).ops}
        stack = ops["qkv_grad_stack.attn.0.bwd"]
        assert stack.input_bytes == stack.output_bytes == 4 * 1024 * 3 * 1024 * 2
    assert not any(op.name.startswith("qkv_grad_stack.") for op in graph("fused").ops)


def test_the_fp32_norms_and_residual_stream_cast_for_the_bf16_gemms():
    """Each norm's fp32 output is cast to bf16 for the next GEMM and its gradient cast back; a
    residual add's backward accumulates the stream's gradient (read two fp32, write one) and casts
    it down for the bf16 branch: 74 such casts in the profiled 12-layer eager step."""
    ops = {op.name: op for op in graph().ops}
    n = 4 * 1024 * 1024
    assert ops["norm_out_bf16.attn_norm.0"].bytes == n * 6 and ops["norm_grad_fp32.attn_norm.0.bwd"].bytes == n * 6
    assert ops["residual1.0.bwd"].input_bytes == 8 * n and ops["residual1.0.bwd"].output_bytes == 4 * n
    assert ops["branch_grad_bf16.residual1.0.bwd"].bytes == n * 6
    assert not any(op.name.startswith(("norm_out_bf16.", "branch_grad_bf16.")) for op in graph("compiled").ops)


def test_torch_checkpoint_stops_its_recompute_before_the_mlp_down_projection():
    names = {fw: [op.name for op in graph(fw, memory={"recompute": "full"}).ops if op.name.endswith(".recompute")]
             for fw in ("eager", "compiled", "fused")}
    for fw in ("eager", "compiled"):
        assert "mlp_act.0.recompute" in names[fw]
        assert "mlp_down.0.recompute" not in names[fw] and "residual2.0.recompute" not in names[fw]
    assert "mlp_down.0.recompute" in names["fused"] and "residual2.0.recompute" in names["fused"]
