"""PyTorch's row-wise CUDA kernels: softmax, log-softmax, LayerNorm, RMSNorm and their backward.

These kernels reduce along a row (a softmax over the last dim, a norm over the hidden size), one
block (or warp) per row, so bytes alone do not price them: in simhw's own sweeps over row widths
(validate/data/h*-2026-11-26/measurements-rowwise.csv, validate/gpu/rowwise.py) a LayerNorm of
64-wide rows streams at 0.05-0.11 of the achievable HBM bandwidth and one of 65536-wide rows at
0.04-0.44, where a 4096-wide one reaches 0.7. What sets the time is the kernel PyTorch dispatches for the width and
how many rows it keeps in flight:

- **dispatch** (aten/src/ATen/native/cuda/SoftMax.cu host_softmax / host_softmax_backward,
  PersistentSoftmax.cuh, layer_norm_kernel.cu; PyTorch 2.x): softmax rows of up to 2048 elements
  and 8 KiB (backward: 1024 and 4 KiB) run one warp per row (``softmax_warp_*``); longer forward rows
  run a 1024-thread block per row keeping the row in registers (``cunn_SoftMaxForwardReg``, up to 9
  elements a thread), in shared memory (``...Smem``, rows under 48 KiB) or re-reading it from
  memory three times (``cunn_SoftMaxForward``); backward rows run a block of up to 512 threads
  (``cunn_SoftMaxBackward[Smem]``) after a separate ``grad * output`` multiply for softmax (not
  log-softmax). LayerNorm and RMSNorm run ``vectorized_layer_norm_kernel`` (128 threads per row,
  4-element loads), which reads the row twice (statistics, then normalisation); their backward
  ``layer_norm_grad_input_kernel_vectorized`` (dX, the same two passes over dY and X) and
  ``GammaBetaBackwardCUDAKernelTemplate`` (ceil(N/32) blocks walking all rows; with more than 65536
  rows and few columns, partial sums and two more reduction kernels).
- **occupancy**: blocks an SM holds, bounded by threads (``threads_per_sm``), blocks
  (``max_blocks_per_sm``) and registers (``registers_per_sm``; each warp's registers allocated in
  units of 256, i.e. per thread rounded up to 8). The registers per thread are CUPTI's launch
  records (torch.profiler, ``registers per thread``) on the H100 with PyTorch 2.11
  (validate/data/h100-2026-11-26/kernel_resources.csv): e.g. 80 for a 2048-wide warp softmax, so an
  SM holds 6 of its 128-thread blocks instead of 16.
- **the block's chain** (Little's law: rows in flight / time per row = throughput): a block waits
  on each of its dependent load rounds (one per pass when its loads are all issued up front, as
  in the warp and register kernels; one per 16-byte vector per thread otherwise) at the
  main-memory latency (``memory.*.latency``, a pointer chase), or at ``l2_latency_fraction`` of
  it when it re-reads a row still in L2 (what the rows in flight read and write between a row's
  two reads, its LRU stack distance, fits in ``l2_resident_fraction`` of it: as cost/roofline.py
  l2_hits; counting the writes took the H100 sweep from 6.4% / 20.6% to 5.5% / 18.0% and the
  H200's from 6.8% / 18.2% to 5.8% / 15.9%, a 4096 x 32000 fp32 log-softmax of a training step
  from -38% to +11%); then its fixed work (reductions, __syncthreads) and each
  thread's elements one after another, in clock cycles (``ROW_KERNELS``: fitted per kernel).
- time = the p-norm (``ROW_OVERLAP``) of waves x chain and HBM bytes / (bandwidth x
  elementwise_memory_fraction), waves = rows / rows in flight (at least 1), plus one launch per
  kernel.

The kernels' cycles are fitted on the H100 sweep (308 rows: 7 ops x 11 widths x bf16/fp32 x
4 Mi/32 Mi elements) by
``python validate/fit_rowwise.py``; checked on the H200's sweep (another memory system: HBM3e,
60 MiB L2), on 19 held-out shapes on both GPUs (model widths and vocabularies:
measurements-rowwise-holdout.csv) and on the training-step traces. Eager PyTorch 2.x only: the
fused kernels of serving engines, Apex/Transformer Engine norms, torch.compile (Triton) and the
2023 dispatch of LLMCompass's A100 rows (no register or shared-memory softmax) differ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Mapping

from ..spec.model import DeviceKind, DeviceSpec
from ..workload.graph import Op, OpKind
from .ctas import overlap


class RowOp(Enum):
    """A row-wise PyTorch op (the measurement CSV's ``op`` cell of a norm or softmax row)."""

    LAYER_NORM = "layernorm"
    RMS_NORM = "rmsnorm"
    LAYER_NORM_BACKWARD = "layernorm_backward"
    RMS_NORM_BACKWARD = "rmsnorm_backward"
    SOFTMAX = "softmax"
    LOG_SOFTMAX = "log_softmax"
    SOFTMAX_BACKWARD = "softmax_backward"
    LOG_SOFTMAX_BACKWARD = "log_softmax_backward"


ROW_OP_CODES = {op: i + 1 for i, op in enumerate(RowOp)}   # Op.shape["row_op"] holds the code (shapes are floats)
ROW_OP_OF_CODE = {code: op for op, code in ROW_OP_CODES.items()}


@dataclass(frozen=True)
class KernelConstants:
    """Clock cycles of one block beyond its loads: ``fixed_cycles`` once (reductions, syncs, the
    write loop's issue) and ``cycles_per_element`` for each element one thread works through in turn."""

    fixed_cycles: float
    cycles_per_element: float


# Fitted on the H100 sweep (validate/fit_rowwise.py; F). Keys: the kernel family, and for the
# per-element work the op's epilogue (softmax divides and exponentiates twice in the register
# kernel; log-softmax subtracts; LayerNorm's Welford update divides per element, RMSNorm's does not).
ROW_KERNELS: Mapping[str, KernelConstants] = {
    "layer_norm": KernelConstants(3474.0, 172.0),
    "rms_norm": KernelConstants(1646.0, 27.0),
    "layer_norm_grad_input": KernelConstants(1851.0, 98.0),
    "gamma_beta": KernelConstants(7507.0, 154.0),
    "softmax_warp": KernelConstants(1615.0, 310.0),
    "log_softmax_warp": KernelConstants(1615.0, 166.0),
    "softmax_warp_backward": KernelConstants(607.0, 73.0),
    "softmax_reg": KernelConstants(3794.0, 310.0),
    "log_softmax_reg": KernelConstants(3794.0, 166.0),
    "softmax_smem": KernelConstants(6549.0, 310.0),
    "log_softmax_smem": KernelConstants(6549.0, 166.0),
    "softmax_block": KernelConstants(3261.0, 310.0),
    "log_softmax_block": KernelConstants(3261.0, 166.0),
    "softmax_smem_backward": KernelConstants(0.0, 73.0),
    "softmax_block_backward": KernelConstants(0.0, 73.0),
}

ROW_OVERLAP = 1.95  # p of the p-norm joining the blocks' chains and the HBM stream (ctas.overlap; F, same fit)

# Registers per thread (CUPTI via torch.profiler, H100, PyTorch 2.11: kernel_resources.csv), by
# the warp kernels' padded row width (elements held per thread grow with it).
_WARP_FWD_REGS = {64: 24, 128: 31, 256: 30, 512: 32, 1024: 48, 2048: 80}
_WARP_LOG_FWD_REGS = {64: 31, 128: 32, 256: 32, 512: 40, 1024: 72, 2048: 128}
_WARP_BWD_REGS = {64: 31, 128: 32, 256: 32, 512: 56, 1024: 96}
# cunn_SoftMaxForwardReg<reg_cnt> (softmax, log-softmax), kernel_resources[-holdout].csv; 9 unmeasured
_REG_FWD_REGS = {1: (26, 26), 2: (26, 26), 3: (28, 26), 4: (30, 30), 5: (30, 30), 6: (29, 32), 7: (34, 32),
                 8: (37, 36), 9: (38, 38)}
_VEC_BYTES = 16            # ILP loads: sizeof(float4)
_SMEM_PER_BLOCK = 48 * 1024   # sharedMemPerBlock, the default opt-in limit SoftMax.cu tests against


@dataclass(frozen=True)
class Pass:
    """One walk of a block over its data: ``steps`` dependent load rounds. ``row_bytes``: what it
    reads of each row. ``reread``: the row was read earlier by the same block, an L2 hit while the
    rows in flight fit the L2. ``resident_bytes`` (>= 0): the pass re-reads a whole tensor the
    previous kernel touched, an L2 hit while that many bytes fit."""

    steps: int
    row_bytes: float = 0.0
    reread: bool = False
    resident_bytes: float = -1.0


@dataclass(frozen=True)
class Launch:
    """One kernel of a row-wise op: its blocks, what bounds their occupancy, passes and work."""

    kernel: str                 # ROW_KERNELS key
    threads: int                # threads per block
    rows_per_block: int
    registers: int              # per thread
    passes: tuple[Pass, ...]
    hbm_bytes: float            # compulsory main-memory bytes (re-reads that miss L2 are added)
    blocks: float               # blocks launched
    elements_per_thread: float  # elements one thread works through in turn
    write_row_bytes: float = 0.0  # bytes each row writes: they pass through the L2 between a row's reads


def _pow2(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def _norm_forward(op: RowOp, row: int, rows: float, e: int) -> tuple[Launch, ...]:
    # vectorized_layer_norm_kernel; rows not a multiple of 4 run two scalar kernels instead
    # (RowwiseMomentsCUDAKernel, LayerNormForwardCUDAKernel), priced here as the vectorized one
    steps = math.ceil(row / 512)            # 128 threads x 4-element vectors per round
    rb = row * e
    if op is RowOp.LAYER_NORM:
        name, regs = "layer_norm", 39 if e >= 4 else 32
    else:
        name, regs = "rms_norm", 32 if e >= 4 else 27
    return (Launch(name, 128, 1, regs, (Pass(steps, rb), Pass(steps, rb, reread=True)), 2 * rows * rb, rows,
                   row / 128, write_row_bytes=rb),)


def _norm_backward(row: int, rows: float, e: int, sms: int) -> tuple[Launch, ...]:
    steps = math.ceil(row / 512)
    rb = row * e
    dx = Launch("layer_norm_grad_input", 128, 1, 32, (Pass(steps, 2 * rb), Pass(steps, 2 * rb, reread=True)),
                3 * rows * rb, rows, row / 128, write_row_bytes=rb)
    gx = math.ceil(row / 32)                # GammaBeta: 32 columns per block, 8 rows per thread per round
    if rows > 65536 and gx < sms / 2:       # partial sums over strips of 32 rows (N / 32 < sm_count / 2)
        gy, by = min(32768 // gx, math.ceil(rows / 32)), 1
    else:
        gy, by = 1, (1 if rows < 64 else 8 if rows < 128 else 16 if rows < 256 else 32)
    rounds = math.ceil(rows / gy / (8 * by))
    gb = Launch("gamma_beta", 32 * by, 1, 32, (Pass(rounds, resident_bytes=2 * rows * rb),), 0.0, gx * gy, 8.0 * rounds)
    sums = tuple(Launch("elementwise", 128, 1, 0, (), gy * row * 4.0, 1, 0.0) for _ in range(2 if gy > 1 else 0))
    return (dx, gb) + sums


def _softmax_forward(op: RowOp, row: int, rows: float, e: int) -> tuple[Launch, ...]:
    rb = row * e
    log = op is RowOp.LOG_SOFTMAX
    prefix = "log_softmax" if log else "softmax"
    if row <= 2048 and rb <= 8192:          # softmax_warp_forward: a warp per row, all loads up front
        width = max(64, _pow2(row))
        per_block = 4 * (2 if width <= 128 else 1)
        regs = (_WARP_LOG_FWD_REGS if log else _WARP_FWD_REGS)[width]
        return (Launch(prefix + "_warp", 128, per_block, regs, (Pass(1, rb),), 2 * rows * rb, rows / per_block,
                       width / 32 * per_block / 4),)
    if row <= 9216:                         # cunn_SoftMaxForwardReg<ceil(row / 1024)>: the row in registers
        reg_cnt = math.ceil(row / 1024)
        return (Launch(prefix + "_reg", 1024, 1, _REG_FWD_REGS[reg_cnt][log], (Pass(1, rb),), 2 * rows * rb, rows,
                       reg_cnt),)
    steps = math.ceil(rb / (1024 * _VEC_BYTES))
    if rb < _SMEM_PER_BLOCK - 128 and row % (_VEC_BYTES // e) == 0:   # cunn_SoftMaxForwardSmem: one read, the
                                                                      # row kept in shared memory (whole vectors only)
        return (Launch(prefix + "_smem", 1024, 1, 32, (Pass(steps, rb),), 2 * rows * rb, rows, row / 1024),)
    passes = (Pass(steps, rb), Pass(steps, rb, reread=True), Pass(steps, rb, reread=True))   # max, sum, write
    return (Launch(prefix + "_block", 1024, 1, 32, passes, 2 * rows * rb, rows, row / 1024, write_row_bytes=rb),)


def _softmax_backward(op: RowOp, row: int, rows: float, e: int) -> tuple[Launch, ...]:
    rb = row * e
    pre: tuple[Launch, ...] = ()
    if op is RowOp.SOFTMAX_BACKWARD:        # softmax_backward_cuda_out: tmp = grad * output first
        pre = (Launch("elementwise", 128, 1, 0, (), 3 * rows * rb, 0, 0.0),)
    if row <= 1024 and rb <= 4096:          # softmax_warp_backward: grad and output loaded up front
        width = max(64, _pow2(row))
        per_block = 4 * (2 if width <= 128 else 1)
        return pre + (Launch("softmax_warp_backward", 128, per_block, _WARP_BWD_REGS[width], (Pass(1, 2 * rb),),
                             3 * rows * rb, rows / per_block, 2 * width / 32 * per_block / 4),)
    ilp = _VEC_BYTES // e                   # SoftMax_getBlockSize: pow2 >= min(row / ILP, 1024) / 2
    threads = max(32, _pow2(min(row // ilp, 1024) // 2))
    steps = math.ceil(rb / (threads * _VEC_BYTES))
    if rb < _SMEM_PER_BLOCK - threads // 32 * 4 and row % ilp == 0:   # grad cached in shared memory, then output
        return pre + (Launch("softmax_smem_backward", threads, 1, 29, (Pass(steps, rb), Pass(steps, rb)),
                             3 * rows * rb, rows, row / threads),)
    regs = 56 if op is RowOp.LOG_SOFTMAX_BACKWARD else 40
    passes = (Pass(steps, rb), Pass(steps, rb))    # grad (sum), then output with grad again
    return pre + (Launch("softmax_block_backward", threads, 1, regs, passes, 4 * rows * rb, rows, row / threads),)


def launches(op: RowOp, row: int, rows: float, esize: int, sms: int) -> tuple[Launch, ...]:
    """The kernels PyTorch runs for ``op`` over ``rows`` rows of ``row`` elements of ``esize`` bytes
    on a GPU of ``sms`` SMs."""
    if op in (RowOp.LAYER_NORM, RowOp.RMS_NORM):
        return _norm_forward(op, row, rows, esize)
    if op in (RowOp.LAYER_NORM_BACKWARD, RowOp.RMS_NORM_BACKWARD):
        return _norm_backward(row, rows, esize, sms)
    if op in (RowOp.SOFTMAX, RowOp.LOG_SOFTMAX):
        return _softmax_forward(op, row, rows, esize)
    return _softmax_backward(op, row, rows, esize)


def blocks_per_sm(hw: DeviceSpec, threads: int, registers: int) -> int:
    """Blocks of ``threads`` threads using ``registers`` each that one SM holds at once."""
    eff = hw.efficiency
    warps = max(1, -(-threads // 32))
    by_threads = eff.threads_per_sm // (32 * warps)
    held = by_threads
    if registers > 0:
        per_warp = 32 * (-(-registers // 8) * 8)     # allocated per warp in units of 256 registers
        held = min(held, (eff.registers_per_sm // per_warp) // warps)
    return max(1, min(held, eff.max_blocks_per_sm))


def launch_time_s(k: Launch, hw: DeviceSpec, constants: Mapping[str, KernelConstants] = ROW_KERNELS,
                  p: float | None = None) -> float:
    """Seconds one kernel's blocks take, launch excluded (module docstring)."""
    eff = hw.efficiency
    bw = hw.main_memory.bandwidth_bytes_per_s * eff.elementwise_memory_fraction
    if k.kernel == "elementwise":          # a pass priced by its bytes (a multiply, the partial sums' .sum(0))
        return k.hbm_bytes / bw
    slots = max(1, hw.compute_units) * blocks_per_sm(hw, k.threads, k.registers)
    rows_in_flight = min(k.blocks, slots) * k.rows_per_block
    cap = hw.l2_resident_bytes
    latency = hw.main_memory.latency_s
    chain, extra = 0.0, 0.0
    for ps in k.passes:
        if ps.resident_bytes >= 0:
            hit = ps.resident_bytes <= cap
            extra += 0.0 if hit else ps.resident_bytes
        else:
            hit = ps.reread and rows_in_flight * (ps.row_bytes + k.write_row_bytes) <= cap
            extra += ps.row_bytes * k.blocks * k.rows_per_block if ps.reread and not hit else 0.0
        chain += ps.steps * latency * (eff.l2_latency_fraction if hit else 1.0)
    c = constants[k.kernel]
    clock = hw.clock_hz if hw.clock_hz > 0 else 1.5e9
    chain += (c.fixed_cycles + c.cycles_per_element * k.elements_per_thread) / clock
    waves = max(1.0, k.blocks / slots)
    return overlap((waves * chain, (k.hbm_bytes + extra) / bw), ROW_OVERLAP if p is None else p)


def rowwise_time_s(op: RowOp, row: float, elements: float, esize: int, hw: DeviceSpec,
                   constants: Mapping[str, KernelConstants] = ROW_KERNELS, p: float | None = None) -> tuple[float, int]:
    """(seconds without launches, kernels launched) of ``op`` over ``elements`` elements in rows
    of ``row``: the sum of its kernels (module docstring)."""
    row_i = max(1, int(round(row)))
    rows = max(1.0, elements / row_i)
    ks = launches(op, row_i, rows, esize, max(1, hw.compute_units))
    return sum(launch_time_s(k, hw, constants, p) for k in ks), len(ks)


def row_op_of(op: Op, hw: DeviceSpec) -> RowOp | None:
    """The PyTorch row kernel a norm or softmax op runs (shape keys ``row`` and ``row_op``), or
    None: another kind, no row given, or a device that is not a GPU (cost/roofline.py op_cost)."""
    s = op.shape
    if (op.kind not in (OpKind.NORM, OpKind.SOFTMAX) or not s or not s.get("row_op") or s.get("row", 0) <= 0
            or s.get("elements", 0) <= 0 or hw.kind is not DeviceKind.GPU or hw.compute_units <= 0):
        return None
    return ROW_OP_OF_CODE.get(int(s["row_op"]))
