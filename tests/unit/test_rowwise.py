"""PyTorch's row-wise kernels (cost/rowwise.py): dispatch by row width, occupancy from registers,
the physics of the block chains, and how measurement rows and traces reach the model."""
from __future__ import annotations

import dataclasses
import io

import pytest

import simhw
from simhw.cost.roofline import op_cost
from simhw.cost.rowwise import (ROW_OP_CODES, RowOp, blocks_per_sm, launches, row_op_of, rowwise_time_s)
from simhw.spec.model import DType
from simhw.validation.schema import build_op, parse_lines
from simhw.workload.graph import Op, OpKind, Phase, shape


@pytest.fixture(scope="module")
def h100():
    return simhw.load_hw("h100")


def kernels(op: RowOp, row: int, rows: int = 4096, esize: int = 2) -> list[str]:
    return [k.kernel for k in launches(op, row, rows, esize, 132)]


@pytest.mark.parametrize("row, esize, kernel", [
    (64, 2, "softmax_warp"), (2048, 2, "softmax_warp"), (2048, 4, "softmax_warp"),   # <= 2048 and <= 8 KiB
    (2049, 2, "softmax_reg"), (9216, 2, "softmax_reg"), (9224, 2, "softmax_smem"),
    (9217, 2, "softmax_block"),      # shared memory takes whole 16-byte vectors only (row % ILP == 0)
    (16384, 2, "softmax_smem"), (24000, 2, "softmax_smem"), (24576, 2, "softmax_block"),
    (12288, 4, "softmax_block"), (11008, 4, "softmax_smem"), (128256, 2, "softmax_block"),
])
def test_softmax_forward_dispatches_by_row_width_like_pytorch(row, esize, kernel):
    # SoftMax.cu host_softmax: warp kernel, then Reg (ceil(row / 1024) < 10), Smem (row < 48 KiB), block
    assert kernels(RowOp.SOFTMAX, row, esize=esize) == [kernel]
    assert kernels(RowOp.LOG_SOFTMAX, row, esize=esize) == ["log_" + kernel]


def test_softmax_backward_multiplies_first_and_uses_softmax_getblocksize():
    assert kernels(RowOp.SOFTMAX_BACKWARD, 1024) == ["elementwise", "softmax_warp_backward"]
    assert kernels(RowOp.LOG_SOFTMAX_BACKWARD, 1024) == ["softmax_warp_backward"]
    assert kernels(RowOp.LOG_SOFTMAX_BACKWARD, 2048) == ["softmax_smem_backward"]
    assert kernels(RowOp.LOG_SOFTMAX_BACKWARD, 32768) == ["softmax_block_backward"]
    # block threads: pow2 >= min(row / ILP, 1024) / 2 (fp32 2048 -> 256, bf16 4096 -> 256, >= 8192 -> 512)
    threads = {(row, e): launches(RowOp.LOG_SOFTMAX_BACKWARD, row, 64, e, 132)[0].threads
               for row, e in ((2048, 4), (4096, 2), (8192, 2), (65536, 2))}
    assert threads == {(2048, 4): 256, (4096, 2): 256, (8192, 2): 512, (65536, 2): 512}


def test_layer_norm_backward_adds_partial_sums_for_many_narrow_rows():
    assert kernels(RowOp.LAYER_NORM_BACKWARD, 4096, rows=8192) == ["layer_norm_grad_input", "gamma_beta"]
    # more than 65536 rows and ceil(N / 32) < sm_count / 2: partial sums, then two .sum(0) kernels
    assert len(launches(RowOp.LAYER_NORM_BACKWARD, 64, 524288, 2, 132)) == 4


@pytest.mark.parametrize("threads, registers, blocks", [
    (128, 32, 16),      # threads bound: 2048 / 128
    (128, 80, 6),       # a 2048-wide warp softmax: 80 x 32 registers per warp -> 25 warps -> 6 blocks
    (128, 39, 12),      # fp32 LayerNorm: 39 rounds up to 40 -> 51 warps -> 12 blocks
    (1024, 30, 2),
    (1024, 37, 1),      # Reg<8>: 40 x 1024 registers leave room for one block
])
def test_blocks_per_sm_follow_threads_and_registers(h100, threads, registers, blocks):
    assert blocks_per_sm(h100, threads, registers) == blocks


def test_more_bandwidth_or_shorter_latency_is_never_slower(h100):
    eff = h100.efficiency
    faster_mem = dataclasses.replace(h100, memory=tuple(
        dataclasses.replace(m, bandwidth_bytes_per_s=2 * m.bandwidth_bytes_per_s, latency_s=m.latency_s / 2)
        for m in h100.memory))
    assert faster_mem.efficiency is eff
    for op in RowOp:
        for row in (64, 1024, 4096, 16384, 65536):
            base, _ = rowwise_time_s(op, row, 1 << 24, 2, h100)
            quick, _ = rowwise_time_s(op, row, 1 << 24, 2, faster_mem)
            assert 0 < quick <= base, (op, row)


def test_a_few_long_rows_are_latency_bound(h100):
    # 64 rows of 65536: one wave of LayerNorm blocks, each walking its row 128 vectors at a time twice;
    # the time follows the memory latency, not the bytes (0.3 of HBM bandwidth measured on the H100)
    t, _ = rowwise_time_s(RowOp.LAYER_NORM, 65536, 64 * 65536, 2, h100)
    stream = 2 * 64 * 65536 * 2 / h100.main_memory.bandwidth_bytes_per_s
    assert t > 5 * stream
    slow = dataclasses.replace(h100, memory=tuple(dataclasses.replace(m, latency_s=2 * m.latency_s)
                                                  for m in h100.memory))
    t2, _ = rowwise_time_s(RowOp.LAYER_NORM, 65536, 64 * 65536, 2, slow)
    assert 1.5 * t < t2 < 2.2 * t


def test_op_cost_prices_row_ops_on_gpus_only(h100):
    keys = dict(elements=float(1 << 24), row=4096.0, row_op=float(ROW_OP_CODES[RowOp.LAYER_NORM]))
    op = Op("ln", OpKind.NORM, Phase.FWD, 0, 5.0 * (1 << 24), DType.BF16, input_bytes=2 << 24, output_bytes=2 << 24,
            shape=shape(**keys))
    assert row_op_of(op, h100) is RowOp.LAYER_NORM
    body, n = rowwise_time_s(RowOp.LAYER_NORM, 4096, 1 << 24, 2, h100)
    assert op_cost(op, h100).time_s == pytest.approx(body + n * h100.efficiency.launch_s)
    plain = dataclasses.replace(op, shape=shape(elements=float(1 << 24)))
    assert row_op_of(plain, h100) is None and op_cost(plain, h100).time_s < op_cost(op, h100).time_s
    cpu = simhw.load_hw("epyc-7742")
    assert row_op_of(op, cpu) is None


def test_measurement_rows_name_op_and_row():
    op = build_op("softmax", dict(elements="1048576", row="4096", op="log_softmax_backward", dtype="fp32"))
    assert op.shape["row"] == 4096 and op.shape["row_op"] == ROW_OP_CODES[RowOp.LOG_SOFTMAX_BACKWARD]
    assert "row" not in build_op("norm", dict(elements="1048576", op="rmsnorm")).shape


@pytest.mark.parametrize("cells, message", [
    ("norm,1e-5,1048576,4096,", "'row' = 4096 needs 'op'"),
    ("norm,1e-5,1048576,4096,softmax", "'op' = 'softmax' must be one of layernorm"),
    ("softmax,1e-5,1024,4096,softmax", "must be a whole number of elements, at most 'elements'"),
    ("softmax,1e-5,1048576,40.5,softmax", "must be a whole number"),
])
def test_bad_row_cells_are_reported_with_their_line(cells, message):
    rows, bad = parse_lines(io.StringIO("kind,measured_s,elements,row,op\n" + cells + "\n"))
    assert not rows and bad[0].line == 2 and message in bad[0].reason


def test_trace_rules_give_layer_norm_and_softmax_their_rows():
    from simhw.trace.ops import Args, rule_for

    ln = rule_for("aten::native_layer_norm").fn(Args([[8, 512, 1024], [1024], [1024], [1024], []],
                                                  ["float", "", "float", "float", "Scalar"],
                                                  ["", "[1024]", "", "", "1e-05"]))
    assert ln.shape["row"] == 1024 and ln.shape["row_op"] == ROW_OP_CODES[RowOp.LAYER_NORM]
    sm = rule_for("aten::_log_softmax").fn(Args([[4096, 50304], [], []], ["c10::BFloat16", "Scalar", "Scalar"],
                                             ["", "-1", "False"]))
    assert sm.shape["row"] == 50304 and sm.shape["row_op"] == ROW_OP_CODES[RowOp.LOG_SOFTMAX]
    other_dim = rule_for("aten::_softmax").fn(Args([[64, 128, 32], [], []], ["float", "Scalar", "Scalar"],
                                                ["", "1", "False"]))
    assert "row_op" not in other_dim.shape     # not the last dim: the spatial kernel, priced by bytes
