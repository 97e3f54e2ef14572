"""Cost rule of torch.compile's Inductor kernels in profiler traces (simhw/trace/inductor.py)."""
from __future__ import annotations

import pytest

from simhw.trace.inductor import inductor_rule, is_inductor_kernel
from simhw.trace.ops import Args
from simhw.trace.rules import lookup
from simhw.workload.graph import OpKind

BF16, F32, S = "c10::BFloat16", "float", "Scalar"


def est(name, dims, types, concrete, strides=None):
    return inductor_rule(name)(Args(dims, types, concrete, {"Input Strides": strides} if strides else None))


def test_a_pointwise_kernel_moves_each_argument_once_and_counts_erf_gelu_flops():
    e = est("triton_poi_fused__unsafe_view_gelu_5", [[16384, 3072], [8, 2048, 3072], []], [BF16, BF16, S],
            ["", "", "50331648"])
    n = 16384 * 3072
    assert e.kind is OpKind.ELEMENTWISE and e.input_bytes + e.output_bytes == pytest.approx(2 * 2 * n)
    assert e.flops == pytest.approx(80 * n) and e.shape["elements"] == n


def test_a_broadcast_argument_counts_the_dimensions_it_spans():
    e = est("triton_poi_fused_add_0", [[4096, 1024], [4096, 1024], []], [F32, F32, S], ["", "", "4194304"],
            strides=[[1024, 1], [0, 1], []])
    assert e.input_bytes + e.output_bytes == pytest.approx(4 * (4096 * 1024 + 1024))


def test_a_looped_norm_reads_its_input_twice_and_a_persistent_one_once():
    dims, types, conc = [[4096, 2560], [2560], [4096, 2560], []], [F32, F32, BF16, S, S], ["", "", "", "4096", "2560"]
    dims = dims[:3] + [[], []]
    red = est("triton_red_fused_native_layer_norm_0", dims, types, conc)
    per = est("triton_per_fused_native_layer_norm_0", dims, types, conc)
    assert red.kind is OpKind.NORM and red.input_bytes == pytest.approx(per.input_bytes + 4096 * 2560 * 4)


def test_a_softmax_backward_writes_its_gradient_over_the_logits():
    e = est("triton_red_fused__log_softmax__log_softmax_backward_data_nll_loss_backward_0",
            [[2, 2048, 32000], [2, 2048], [], [], [4096, 1], [4096, 1], [], []],
            [BF16, "long int", F32, F32, F32, F32, S, S], ["", "", "", "", "", "", "4096", "32000"])
    assert e.kind is OpKind.SOFTMAX and e.input_bytes + e.output_bytes >= 2 * 2 * 4096 * 32000


def test_a_gather_moves_at_most_its_iteration_space():
    """The NLL picks one logit per row: the kernel visits 4096 elements, not the 131 M logits."""
    e = est("triton_red_fused__log_softmax_nll_loss_forward_sub_view_3",
            [[], [2, 2048], [4096, 32000], [4096, 1], [4096, 1], [], [], []],
            [F32, "long int", BF16, F32, F32, F32, S, S], ["", "", "", "", "", "", "1", "4096"])
    assert e.input_bytes + e.output_bytes < 1e5 and e.shape["elements"] == 4096


def test_inductor_names_map_to_rules_and_templates_do_not():
    assert is_inductor_kernel("triton_per_fused_x_1") and lookup("triton_per_fused_x_1") is not None
    assert lookup("triton_tem_fused_flex_attention_0") is None and lookup("my_triton_kernel") is None
    assert lookup("triton_tem_fused_mm_0") is not None


def test_a_gemm_template_is_costed_as_the_gemm_its_arguments_chain_into():
    """max-autotune's triton_tem_fused_addmm: bias, A (m, k), B (k, n), out (m, n), in launch order."""
    e = est("triton_tem_fused_addmm_0", [[4096], [8192, 4096], [4096, 4096], [8192, 4096]], [BF16] * 4, [""] * 4)
    assert e.kind is OpKind.GEMM and (e.shape["m"], e.shape["n"], e.shape["k"]) == (8192, 4096, 4096)
    assert e.flops == 2.0 * 8192 * 4096 * 4096 and e.output_bytes == 8192 * 4096 * 2
    assert e.weight_bytes == (4096 * 4096 + 4096) * 2          # B and the bias
    b = est("triton_tem_fused_bmm_1", [[8, 128, 64], [8, 64, 256], [8, 128, 256]], [BF16] * 3, [""] * 3)
    assert b.shape["batch"] == 8 and b.flops == 2.0 * 8 * 128 * 256 * 64
    assert est("triton_tem_fused_mm_2", [[64, 32], [16, 8]], [BF16] * 2, ["", ""]) is None   # nothing chains
