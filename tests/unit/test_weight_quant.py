"""Weight-only quantization for serving (memory.weight_bits: AWQ, GPTQ, FP8 / INT8 weights with
16-bit activations): weight bytes and memory of the layers' linear weights, GEMMs that read
narrower weights and compute in the dtype, and clear errors."""
from dataclasses import replace

import pytest

from simhw.cost.estimate import estimate
from simhw.cost.memory import memory_breakdown
from simhw.cost.roofline import gemm_time_s, op_cost
from simhw.errors import WorkloadError
from simhw.spec.load import load_hw
from simhw.spec.model import DType
from simhw.workload.from_yaml import load_workload
from simhw.workload.graph import OpKind
from simhw.workload.spec import MemoryOptions
from simhw.workload.transformer import build_graph

WL = "workloads/llama2-70b-decode.yaml"      # fp16, TP 4


def _wl(bits, *sets):
    return load_workload(WL, [f"memory.weight_bits={bits}", *sets])


def test_effective_bits_add_a_16_bit_scale_and_zero_per_group():
    assert MemoryOptions(weight_bits=4).weight_bits_effective(16) == pytest.approx(4.25)
    assert MemoryOptions(weight_bits=4, weight_group_size=64).weight_bits_effective(16) == pytest.approx(4.5)
    assert MemoryOptions(weight_bits=8).weight_bits_effective(8) == 8      # not narrower than the dtype
    assert MemoryOptions().weight_bits_effective(16) == 16
    # MXFP4 (OCP MX v1.0): one 8-bit scale per 32 four-bit weights
    assert MemoryOptions(weight_bits=4, weight_group_size=32, weight_scale_bits=8).weight_bits_effective(16) == 4.25


def test_layer_weights_shrink_and_the_embedding_and_head_do_not():
    fp16, int4 = _wl(0), _wl(4)
    m = fp16.model
    layers = m.layers * m.layer_params() / 4
    other = (m.embedding_params() + m.head_params()) / 4
    assert memory_breakdown(fp16).parameters_bytes == pytest.approx(2 * (layers + other), rel=1e-6)
    assert memory_breakdown(int4).parameters_bytes == pytest.approx(layers * 4.25 / 8 + 2 * other, rel=1e-6)
    g16, g4 = ({op.name: op for op in build_graph(w, compact=True).ops} for w in (fp16, int4))
    assert g4["mlp_up.0"].weight_bytes == pytest.approx(g16["mlp_up.0"].weight_bytes * 4.25 / 16)
    assert g4["mlp_up.0"].shape["weight_bits"] == pytest.approx(4.25) and g4["mlp_up.0"].flops == g16["mlp_up.0"].flops
    assert g4["lm_head"].weight_bytes == g16["lm_head"].weight_bytes and "weight_bits" not in g4["lm_head"].shape


def test_a_draft_model_is_quantized_once():
    wl = _wl(4, "decode.speculative_tokens=2", "decode.draft_model=llama2-7b")
    drafts = [op for op in build_graph(wl, compact=True).ops if op.name.startswith("draft0.mlp_up")]
    plain = [op for op in build_graph(_wl(0, "decode.speculative_tokens=2", "decode.draft_model=llama2-7b"),
                                      compact=True).ops if op.name.startswith("draft0.mlp_up")]
    assert drafts[0].weight_bytes == pytest.approx(plain[0].weight_bytes * 4.25 / 16)


def test_marlin_like_speedups_where_weights_dominate_and_none_where_compute_does():
    """Marlin (Frantar et al. 2024, arXiv 2408.11743) reaches close to the ideal ~3.9x over FP16 for
    4-bit weights with group scales at batch sizes up to 16-32 on an A10; at large batches the GEMM
    is compute-bound and the weights' width no longer matters (dequantization is not priced)."""
    a10 = load_hw("a10")
    for m in (1, 16):
        t16 = gemm_time_s(m, 8192, 8192, 1, DType.FP16, a10)[0]
        t4 = gemm_time_s(m, 8192, 8192, 1, DType.FP16, a10, b_bytes=4.25 / 8)[0]
        assert 3.2 < t16 / t4 <= 16 / 4.25 + 1e-9
    big16 = gemm_time_s(8192, 8192, 8192, 1, DType.FP16, a10)[0]
    big4 = gemm_time_s(8192, 8192, 8192, 1, DType.FP16, a10, b_bytes=4.25 / 8)[0]
    assert big4 == pytest.approx(big16, rel=0.03)


def test_decode_gets_faster_prefill_does_not():
    h100 = load_hw("h100")
    one = [estimate(_wl(b, "micro_batch=1", "global_batch=1"), h100).step_time_s for b in (0, 8, 4)]
    assert one[0] > 1.3 * one[1] and one[1] > 1.15 * one[2]     # fp16 > 8-bit > 4-bit weights at batch 1
    pre = [estimate(_wl(b, "mode=prefill", "micro_batch=8", "global_batch=8"), h100).step_time_s for b in (0, 4)]
    # (within 3%: the narrow-weight library's small tiles overlap their stores on sm90, the dtype's
    # large cooperative ones do not: efficiency.gemm_pingpong_max_tile_elems)
    assert pre[1] == pytest.approx(pre[0], rel=0.03)
    gemm = next(op for op in build_graph(_wl(4, "micro_batch=1", "global_batch=1"), compact=True).ops
                if op.name == "mlp_down.0")
    base = next(op for op in build_graph(_wl(0, "micro_batch=1", "global_batch=1"), compact=True).ops
                if op.name == "mlp_down.0")
    assert gemm.kind is OpKind.GEMM and op_cost(base, h100).time_s > 3.0 * op_cost(gemm, h100).time_s


def test_sixteen_bits_on_fp16_is_no_quantization():
    h100 = load_hw("h100")
    assert estimate(_wl(16), h100).step_time_s == estimate(_wl(0), h100).step_time_s


@pytest.mark.parametrize("sets, needle", [(["memory.weight_bits=4", "mode=train", "optimizer=adam"], "serving"),
                                          (["memory.weight_bits=-1"], "weight_bits"),
                                          (["memory.weight_bits=four"], "weight_bits"),
                                          (["memory.weight_bits=4", "memory.weight_group_size=0"], "weight_group_size")])
def test_bad_weight_quantization_is_a_clear_error(sets, needle):
    with pytest.raises(WorkloadError) as err:
        load_workload(WL, sets)
    assert needle in str(err.value)
