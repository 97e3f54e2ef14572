"""SDPA backends' cost rules read is_causal where each schema puts it (aten native_functions.yaml),
and a backward attention kernel runs at the spec's attention_backward_fraction."""
from __future__ import annotations

import dataclasses

import pytest

import simhw
from simhw.cost.roofline import op_cost
from simhw.spec.model import DType
from simhw.trace.ops import Args
from simhw.trace.rules import lookup
from simhw.workload.graph import Op, OpKind, Phase

BF16, S = "c10::BFloat16", "Scalar"
Q = [8, 12, 2048, 64]


def _est(name, dims, types, concrete):
    return lookup(name).fn(Args(dims, types, concrete))


def test_the_cudnn_backward_reads_is_causal_at_its_fifteenth_argument():
    """As recorded in simhw's own H100 trace: max_q, max_k at 11, 12, dropout at 13, is_causal at 14."""
    dims = [Q] * 5 + [[8, 12, 2048, 1], [], [], [], [], [], [], [], [], [], []]
    types = [BF16] * 5 + ["float", "long int", "long int", "", "", "", S, S, S, S, ""]
    concrete = [""] * 11 + ["2048", "2048", "0.", "True", ""]
    bwd = _est("aten::_scaled_dot_product_cudnn_attention_backward", dims, types, concrete)
    fwd = _est("aten::_scaled_dot_product_cudnn_attention", [Q] * 3 + [[], [], [], [], [], []],
               [BF16] * 3 + ["", S, S, S, S, ""], ["", "", "", "", "True", "0.", "True", "False", ""])
    assert fwd.shape["causal"] == bwd.shape["causal"] == 1.0
    assert bwd.flops == pytest.approx(2.5 * fwd.flops)


@pytest.mark.parametrize("concrete, causal", [(["", ""] + [""] * 7 + ["0.", "[True, True, True, False]", "True"], 1.0),
                                              (["", ""] + [""] * 4 + ["False", "False"], 0.0)])
def test_the_efficient_backward_finds_is_causal_in_either_schema(concrete, causal):
    """torch >= 2.1: (..., dropout_p, grad_input_mask, is_causal); torch 2.0: (..., logsumexp, is_causal, chunk)."""
    n = len(concrete)
    dims = [Q] * 4 + [[]] * (n - 4)
    types = [BF16] * 4 + [S] * (n - 4)
    e = _est("aten::_scaled_dot_product_efficient_attention_backward", dims, types, concrete)
    assert e.shape["causal"] == causal


def test_a_backward_attention_kernel_runs_at_the_backward_fraction():
    hw = simhw.load_hw("h100")
    shape = {"batch": 8, "heads": 12, "kv_heads": 12, "seq_q": 2048, "seq_kv": 2048, "head_dim": 64,
             "causal": 1.0, "flash": 1.0}
    fwd_flops = 4.0 * 8 * 12 * 2048 * 2048 * 64 * 0.5

    def time(phase, eff):
        op = Op("attn", OpKind.ATTENTION, phase, 0, (2.5 if phase is Phase.BWD else 1.0) * fwd_flops, DType.BF16,
                input_bytes=1e8, output_bytes=3e7, shape=shape)
        return op_cost(op, dataclasses.replace(hw, efficiency=eff)).time_s

    slow = hw.efficiency
    even = dataclasses.replace(slow, attention_backward_fraction=1.0)
    assert hw.efficiency.attention_backward_fraction == pytest.approx(0.70)
    assert time(Phase.BWD, slow) > 1.3 * time(Phase.BWD, even)
    assert time(Phase.FWD, slow) == time(Phase.FWD, even)





@pytest.mark.parametrize("types, concrete", [([BF16] * 3 + ["", S, S, S, ""], ["", "", "", "", "True", "0.", "True", ""]),
                                             ([BF16] * 3 + [S, S], ["", "", "", "True", "True"])])
def test_the_efficient_forward_finds_is_causal_in_either_schema(types, concrete):
    """torch >= 2.1: (q, k, v, attn_bias, compute_log_sumexp, dropout_p, is_causal); 2.0: (q, k, v, lse, is_causal)."""
    dims = [Q] * 3 + [[]] * (len(types) - 3)
    e = _est("aten::_scaled_dot_product_efficient_attention", dims, types, concrete)
    assert e.shape["causal"] == 1.0
