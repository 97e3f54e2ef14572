"""Context parallelism: each of cp ranks holds seq_len / cp tokens of every sequence, gathers the
whole sequence's K and V (all-gather CP, Llama 3 §3.3.2) and, load-balanced, does 1 / cp of the
causal attention; model FLOPs, MFU and energy count all the cp ranks."""
import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind, Phase
from simhw.workload.opbuild import COLLECTIVE_BY_CODE
from simhw.workload.transformer import build_graph
from simhw.workload.graph import Collective


def _wl(cp, tp=4, model="llama3-8b", seq=65536):
    return workload_from_dict({"model": model, "mode": "train", "seq_len": seq, "micro_batch": 1, "global_batch": 8,
                               "devices": 8 * tp, "parallelism": {"tp": tp, "cp": cp},
                               "memory": {"recompute": "full"}})


def _fwd(wl, kind):
    return [op for op in build_graph(wl, compact=True).ops if op.kind is kind and op.phase is Phase.FWD]


@pytest.mark.parametrize("model", ["llama3-8b", "deepseek-v2-lite"])
def test_each_rank_does_its_share_of_the_causal_attention(model):
    one, four = _wl(1, model=model), _wl(4, model=model)
    att = lambda wl: sum(op.flops * op.count for op in _fwd(wl, OpKind.ATTENTION))   # noqa: E731
    assert 4 * att(four) == pytest.approx(att(one))


def test_ranks_gather_the_sequences_keys_and_values():
    wl = _wl(4)
    (gather,) = [op for op in _fwd(wl, OpKind.COLLECTIVE) if op.name.startswith("cp_kv")]
    assert COLLECTIVE_BY_CODE[int(gather.shape["collective"])] is Collective.ALL_GATHER
    assert gather.shape["ranks"] == 4 and gather.shape["inner"] == 4
    kv_heads, head_dim = 8 // 4, 128
    assert gather.shape["bytes"] == pytest.approx(65536 * kv_heads * 2 * head_dim * 2)   # the whole sequence's K, V
    assert gather.count == 32


def test_model_flops_and_mfu_count_every_context_parallel_rank():
    hw = simhw.load_hw("dgx-h100")
    one, four = simhw.estimate(_wl(1), hw), simhw.estimate(_wl(4), hw)
    assert four.model_flops == pytest.approx(one.model_flops, rel=1e-9)
    assert four.mfu == pytest.approx(one.mfu * one.step_time_s / four.step_time_s, rel=1e-9)
    assert four.memory.activations_bytes < one.memory.activations_bytes / 3


def test_gradients_reduce_and_zero_shards_over_data_and_context_parallel_ranks():
    """The cp ranks train the same weights on different chunks: with dp = 1 and cp = 4 the
    gradients still reduce over 4 ranks, and ZeRO-3 shards the weights 4 ways."""
    raw = {"model": "llama3-8b", "mode": "train", "seq_len": 65536, "micro_batch": 1, "global_batch": 8,
           "devices": 16, "parallelism": {"tp": 4, "cp": 4}, "memory": {"zero_stage": 3}}
    wl = workload_from_dict(raw)
    (reduce,) = [op for op in build_graph(wl, compact=True).ops if op.name == "dp_grad_reduce"]
    assert reduce.shape["ranks"] == 4 and reduce.shape["inner"] == 4
    plain = workload_from_dict({**raw, "devices": 16, "parallelism": {"tp": 4, "cp": 1}})   # dp = 4
    hw = simhw.load_hw("dgx-h100")
    assert simhw.estimate(wl, hw).memory.parameters_bytes == pytest.approx(
        simhw.estimate(plain, hw).memory.parameters_bytes)
