"""PyTorch's embedding backward on CUDA (cost/embedding.py): the sorted path's waves of short
chains, the feature kernel for few tokens, and how traces reach the model."""
from __future__ import annotations

import dataclasses

import pytest

import simhw
from simhw.cost.embedding import SMALL_TOKENS, embedding_backward_time_s, is_dense_backward
from simhw.cost.roofline import op_cost
from simhw.spec.model import DType
from simhw.trace.ops import Args, rule_for
from simhw.workload.graph import Op, OpKind, Phase, shape


@pytest.fixture(scope="module")
def h100():
    return simhw.load_hw("h100")


def test_many_tokens_take_the_sorted_path_and_cost_far_more_than_their_bytes(h100):
    body, kernels = embedding_backward_time_s(16384, 32000, 4096, 2, h100)
    assert kernels == 31                            # as the measured kernel names list them
    table_and_grads = (32000 + 2 * 16384) * 4096 * 2 / h100.main_memory.bandwidth_bytes_per_s
    assert body > 3 * table_and_grads               # waves of 1024-thread blocks, each a chain of round trips


def test_few_tokens_take_the_feature_kernel(h100):
    assert embedding_backward_time_s(SMALL_TOKENS, 32000, 4096, 2, h100)[1] == 2
    assert embedding_backward_time_s(SMALL_TOKENS + 1, 32000, 4096, 2, h100)[1] == 31


def test_time_follows_the_memory_latency_and_the_distinct_ids(h100):
    slow = dataclasses.replace(h100, memory=tuple(dataclasses.replace(m, latency_s=2 * m.latency_s)
                                                  for m in h100.memory))
    base = embedding_backward_time_s(16384, 32000, 4096, 2, h100)[0]
    assert embedding_backward_time_s(16384, 32000, 4096, 2, slow)[0] > 1.5 * base
    # a small vocabulary: the same tokens fall on fewer distinct rows, so fewer segments to scatter
    assert embedding_backward_time_s(16384, 1000, 4096, 2, h100)[0] < base


def test_trace_rule_and_op_cost(h100):
    est = rule_for("aten::embedding_dense_backward").fn(
        Args([[8, 2048, 4096], [8, 2048], [], [], []], ["c10::BFloat16", "long int", "Scalar", "Scalar", "Scalar"],
             ["", "", "50304", "-1", "False"]))
    assert est.shape["tokens"] == 16384 and est.shape["vocab"] == 50304 and est.shape["hidden"] == 4096
    op = Op("emb.bwd", OpKind.EMBEDDING, Phase.BWD, -1, est.flops, DType.BF16, input_bytes=est.input_bytes,
            output_bytes=est.output_bytes, shape=shape(**est.shape))
    assert is_dense_backward(op, h100)
    body, kernels = embedding_backward_time_s(16384, 50304, 4096, 2, h100)
    assert op_cost(op, h100).time_s == pytest.approx(body + kernels * h100.efficiency.launch_s)
    assert not is_dense_backward(op, simhw.load_hw("epyc-7742"))
