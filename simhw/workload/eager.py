"""Eager PyTorch training (workload ``framework: eager``): the kernels a plain PyTorch step runs that
a fused training framework (Megatron-LM, DeepSpeed; ``framework: fused``, the default) does not.

A step of ``torch.autocast(dtype=bf16)`` over fp32 parameters with ``torch.optim.AdamW`` (its
default foreach implementation) and ``F.cross_entropy`` on fp32 logits, as in simhw's own runs
(validate/gpu/train_e2e.py; kernel names and times in validate/data/h100-2026-11-26/
train_e2e_*_trace.json.gz), differs from the fused graph by:

- **autocast casts**: each forward casts every weight a GEMM reads from fp32 to bf16 (read 4 B,
  write 2 B per parameter); each backward adds the bf16 weight gradient into the fp32 ``.grad``
  (AccumulateGrad: read 2 B, write 4 B, and read the old 4 B when micro-batches accumulate);
- **an fp32 residual stream**: the embedding runs in fp32 and a bf16 projection added to an fp32
  stream promotes it, so residual adds and LayerNorm / RMSNorm (an autocast fp32 op) move 4-byte
  elements; the norms run aten's row kernels (cost/rowwise.py); each norm's fp32 output is cast to
  bf16 for the next GEMM (its gradient cast back in backward), and each residual add's backward
  casts the stream's gradient down for the bf16 branch (74 such casts in the 12-layer trace);
- **the embedding's backward**: aten's sort-based kernels on an fp32 table (cost/embedding.py);
- **the attention backward's q, k, v gradients** gathered into the QKV projection's gradient by
  one copy (unbind's backward: a stack);
- **a gated MLP's activation** as two kernels (silu or gelu, then the product), and in backward
  the two halves' gradients concatenated by one more copy (``chunk``'s backward is a ``cat``);
- **GELU in its erf form** (80 FLOPs per element forward, 100 backward: workload/functions.py);
- **the loss**: ``logits.float()`` (a bf16 -> fp32 copy), aten's log-softmax over the vocabulary
  (cost/rowwise.py) and NLL, and in backward the NLL gradient's fp32 fill, log-softmax backward
  and the copy back to bf16;
- **foreach AdamW**: eight foreach passes over fp32 lists (three BinaryOpScalar: weight decay,
  beta2 scaling and + eps; lerp_; addcmul_; sqrt; div_; addcdiv_), as the trace's multi-tensor
  kernels show: 52 bytes read and 32 written per parameter, 84 against a fused kernel's 28-32.

Host dispatch gaps between kernels are not modelled (8 ms of a 56 ms step of a 134 M-parameter
model on the H100; under 3% of the larger models' steps).
"""
from __future__ import annotations

from dataclasses import replace

from ..cost.rowwise import ROW_OP_CODES, RowOp
from ..spec.model import DType
from .functions import function_flops
from .graph import Op, OpKind, Phase, shape
from .models import Activation, Norm
from .spec import Optimizer, OptimizerKernel, Workload

# (bytes read, bytes written, foreach ops) per parameter of one step (torch/optim/adamw.py, sgd.py
# _multi_tensor_*): AdamW's three BinaryOpScalar passes (weight decay, beta2 scaling, + eps), lerp_
# (exp_avg, grad), addcmul_ (exp_avg_sq, grad, grad), sqrt, div_ and addcdiv_ (param, exp_avg,
# denom); momentum SGD's weight-decay add (grad, param), momentum mul_ and add_, and the update
FOREACH_STEP = {Optimizer.ADAM: (3 * 4 + 8 + 12 + 4 + 4 + 12, 3 * 4 + 4 + 4 + 4 + 4 + 4, 8),
                Optimizer.ADAMW: (3 * 4 + 8 + 12 + 4 + 4 + 12, 3 * 4 + 4 + 4 + 4 + 4 + 4, 8),
                Optimizer.SGD: (8 + 4 + 8 + 8, 4 + 4 + 4 + 4, 4)}
FOREACH_STEP[Optimizer.MUON] = FOREACH_STEP[Optimizer.SGD]    # torch.optim.Muon's momentum and update passes
FOREACH_ADAMW_BYTES_PER_PARAM = sum(FOREACH_STEP[Optimizer.ADAMW][:2])
# torch.optim's fused kernels on fp32 parameters (torch/optim/adamw.py _fused_adamw, sgd.py _fused_sgd):
# one pass reads param, grad, exp_avg, exp_avg_sq and writes param and both moments (AdamW, 28 B);
# SGD reads param, grad, momentum and writes param and momentum (20 B)
FUSED_STEP = {Optimizer.ADAM: (16, 12, 1), Optimizer.ADAMW: (16, 12, 1), Optimizer.SGD: (12, 8, 1),
              Optimizer.MUON: (12, 8, 1)}
_ROW_OP = {(Norm.LAYERNORM, False): RowOp.LAYER_NORM, (Norm.LAYERNORM, True): RowOp.LAYER_NORM_BACKWARD,
           (Norm.RMSNORM, False): RowOp.RMS_NORM, (Norm.RMSNORM, True): RowOp.RMS_NORM_BACKWARD}


def eager_ops(wl: Workload, ops: list[Op], microbatches: int = 1) -> list[Op]:
    """``ops`` (one micro-batch's graph, training) as eager PyTorch runs them (module docstring)."""
    out: list[Op] = []
    vocab = -(-wl.model.vocab // wl.parallelism.tp)
    for op in ops:
        base = op.name.split(".")[0]
        backward = op.phase is Phase.BWD
        if (shared := _torch_common(wl, op, microbatches, "accumulate_grad")) is not None:
            out.extend(shared)
        elif op.kind is OpKind.NORM and wl.model.norm in (Norm.LAYERNORM, Norm.RMSNORM):
            # the fp32 norm output is cast to bf16 for the next GEMM (and its gradient back to fp32)
            n = op.shape["elements"]
            if backward:
                out.append(_cast(f"norm_grad_fp32.{op.name}", op, n, 2, 4))
            out.append(_fp32(op, row=float(op.shape.get("row", wl.model.hidden)),
                             row_op=float(ROW_OP_CODES[_ROW_OP[wl.model.norm, backward]])))
            if not backward:
                out.append(_cast(f"norm_out_bf16.{op.name}", op, n, 4, 2))
        elif base in ("residual1", "residual2") and backward:
            # autograd passes the sum's gradient through and adds the branch's into the stream's
            # (aten::add_: two fp32 tensors read, one written), then casts it down for the bf16 branch
            n = op.shape["elements"]
            out.append(replace(_fp32(op), input_bytes=8 * n, output_bytes=4 * n))
            out.append(_cast(f"branch_grad_bf16.{op.name}", op, n, 4, 2))
        elif base in ("residual1", "residual2"):
            out.append(_fp32(op))
        elif base == "mlp_act" and wl.model.activation.gated:
            # silu(gate) and the product are two kernels: the activation is written and read back
            # (forward reads 3 and writes 2 ffn-wide tensors where a fused kernel reads 2, writes 1)
            out.append(replace(op, input_bytes=op.input_bytes * 1.5, output_bytes=op.output_bytes * 2,
                               shape=shape(**{**op.shape, "launches": 3.0 if backward else 2.0})))
            if backward:   # the gate / up halves' gradients are concatenated for the GEMMs (chunk's backward: cat)
                e = op.dtype.bytes
                out.append(_cast(f"chunk_cat.{op.name}", op, 2 * op.shape["elements"], e, e))
        elif op.kind is OpKind.LOSS and base == "loss":
            out.extend(_loss(op, vocab, backward))
        else:
            out.append(op)
    return out


def compiled_ops(wl: Workload, ops: list[Op], microbatches: int = 1) -> list[Op]:
    """``ops`` (one micro-batch's graph, training) as torch.compile runs them: each block and the
    head with its loss compiled (regional compilation), the embedding eager, bf16 autocast over fp32
    weights, a torch.optim update (fused by default).

    From the Inductor kernels of simhw's own compiled steps (validate/data/h200-2026-11-26/
    train_e2e_*-fusedadam-compiled_trace.json.gz): the weight casts and the fp32 gradient stay as
    in eager (the graph casts each weight, backward writes its gradient in fp32); the residual
    stream stays fp32, its add fused with the next norm into one kernel that reads the fp32 stream
    and the bf16 branch and writes the fp32 sum (the norm then reads and writes as the fused graph
    prices it); GELU is the erf form; a gated activation is one kernel; the loss reads the bf16
    logits twice (online log-softmax, then the NLL) and its backward reads them once and writes
    the bf16 gradient; the q, k, v gradients are gathered by one stack kernel as in eager; the
    embedding's backward is aten's (eager).
    """
    out: list[Op] = []
    vocab = -(-wl.model.vocab // wl.parallelism.tp)      # this rank's vocabulary shard
    for op in ops:
        base = op.name.split(".")[0]
        backward = op.phase is Phase.BWD
        if (shared := _torch_common(wl, op, microbatches, "grad_fp32")) is not None:
            out.extend(shared)
        elif base in ("residual1", "residual2"):     # fp32 stream + bf16 branch in, fp32 out
            e = op.dtype.bytes
            out.append(replace(op, input_bytes=op.input_bytes * (4 + e) / (2 * e), output_bytes=op.output_bytes * 4 / e))
        elif op.kind is OpKind.LOSS and base == "loss":
            n, logits_b = op.shape["elements"], wl.dtype.bytes
            out.append(replace(op, input_bytes=n * logits_b * (1 if backward else 2),
                               output_bytes=n * logits_b if backward else 4 * n / vocab))
        else:
            out.append(op)
    return out


def _torch_common(wl: Workload, op: Op, microbatches: int, grad: str) -> list[Op] | None:
    """What eager and compiled PyTorch run alike for ``op``: autocast's weight cast and fp32
    gradient, erf GELU, aten's embedding backward, the q, k, v gradients' stack after the
    attention backward (one Inductor kernel when compiled) and torch.optim's update; None for
    other ops."""
    backward = op.phase is Phase.BWD
    if (cast := _autocast(op, microbatches, grad)) is not None:
        return cast
    if op.name.split(".")[0] == "mlp_act" and wl.model.activation is Activation.GELU:
        per = function_flops("gelu_backward" if backward else "gelu")
        return [replace(op, flops=per * op.shape["elements"])]
    if op.kind is OpKind.EMBEDDING and backward and wl.parallelism.tp == 1:
        return [_aten_embedding_backward(wl, op)]
    if op.kind is OpKind.ATTENTION and backward and op.shape and "seq_q" in op.shape:
        return _with_qkv_grad_stack(op)
    if op.kind is OpKind.OPTIMIZER:
        return [_torch_optim(wl, op)]
    return None


def _autocast(op: Op, microbatches: int, grad: str) -> list[Op] | None:
    """A forward weight GEMM after autocast's cast of its fp32 weight (read 4 B, write 2 B per
    element), or a weight-gradient GEMM and the bf16 -> fp32 write of its gradient named ``grad``
    (read 2 B, write 4 B, and read the old 4 B when micro-batches accumulate); None for other ops."""
    if op.kind is not OpKind.GEMM:
        return None
    if op.weight_bytes > 0 and op.phase is not Phase.BWD:
        return [_cast(f"autocast.{op.name}", op, op.weight_bytes / op.dtype.bytes, 4, 2), op]
    if op.name.endswith(".wgrad"):
        acc_read = 2 + 4 * (1 - 1 / max(1, microbatches))
        return [op, _cast(f"{grad}.{op.name}", op, op.output_bytes / op.dtype.bytes, acc_read, 4)]
    return None


def _with_qkv_grad_stack(op: Op) -> list[Op]:
    """An attention backward and the copy after it: SDPA's q, k, v gradients come out head-major
    and autograd gathers them into the QKV projection's token-major gradient (unbind / split
    backward: a stack or cat; aten::stack once per layer in the profiled eager steps)."""
    sh = op.shape
    qkv = sh["batch"] * sh["seq_q"] * (sh["heads"] + 2 * sh.get("kv_heads", sh["heads"])) * sh["head_dim"]
    return [op, _cast(f"qkv_grad_stack.{op.name}", op, qkv, op.dtype.bytes, op.dtype.bytes)]


def _torch_optim(wl: Workload, op: Op) -> Op:
    """The optimizer step as torch.optim runs it on fp32 parameters (foreach or fused kernels)."""
    table = FOREACH_STEP if wl.step_kernel is OptimizerKernel.FOREACH else FUSED_STEP
    if wl.optimizer not in table:
        return op
    reads, writes, passes = table[wl.optimizer]
    params = op.shape["elements"]
    return replace(op, input_bytes=params * reads, output_bytes=params * writes,
                   shape=shape(elements=params, launches=float(passes)))


def _aten_embedding_backward(wl: Workload, op: Op) -> Op:
    """aten's sort-based embedding backward on an fp32 table (cost/embedding.py)."""
    tokens = op.shape["elements"] / wl.model.hidden
    return replace(_fp32(op), shape=shape(elements=op.shape["elements"], tokens=tokens,
                                          vocab=float(wl.model.vocab), hidden=float(wl.model.hidden),
                                          dense_backward=1.0))


def _cast(name: str, like: Op, elements: float, read_b: float, write_b: float) -> Op:
    """A dtype cast, accumulate or layout copy over ``elements`` elements next to ``like`` (same
    layer, phase, count), moving ``read_b`` and ``write_b`` bytes per element."""
    return Op(name, OpKind.ELEMENTWISE, like.phase, like.layer, elements, DType.FP32,
              input_bytes=elements * read_b, output_bytes=elements * write_b, model_flops=0.0,
              shape=shape(elements=elements), count=like.count)


def _fp32(op: Op, **keys: float) -> Op:
    """``op`` on 4-byte elements (the fp32 residual stream), with extra shape keys."""
    scale = 4 / op.dtype.bytes
    return replace(op, dtype=DType.FP32, input_bytes=op.input_bytes * scale, output_bytes=op.output_bytes * scale,
                   shape=shape(**{**op.shape, **keys}))


def _loss(op: Op, vocab: int, backward: bool) -> list[Op]:
    """logits.float() -> log_softmax -> nll_loss (and their backward) over tokens x vocab fp32 elements."""
    n = op.shape["elements"]
    tokens = n / vocab
    lsm = RowOp.LOG_SOFTMAX_BACKWARD if backward else RowOp.LOG_SOFTMAX
    keys = dict(elements=n, row=float(vocab), row_op=float(ROW_OP_CODES[lsm]))
    softmax = Op(f"log_softmax{'.bwd' if backward else ''}", OpKind.SOFTMAX, op.phase, op.layer, 4.0 * n,
                 DType.FP32, input_bytes=n * 4 * (2 if backward else 1), output_bytes=n * 4, model_flops=0.0,
                 shape=shape(**keys), count=op.count)
    if not backward:
        return [_cast("logits_float", op, n, 2, 4), softmax,
                Op("nll_loss", OpKind.LOSS, op.phase, op.layer, tokens, DType.FP32, input_bytes=tokens * 12,
                   output_bytes=4, model_flops=0.0, shape=shape(elements=tokens), count=op.count)]
    fill = Op("nll_loss.bwd", OpKind.LOSS, op.phase, op.layer, tokens, DType.FP32, input_bytes=tokens * 12,
              output_bytes=n * 4, model_flops=0.0, shape=shape(elements=n), count=op.count)
    return [fill, softmax, _cast("logits_float.bwd", op, n, 4, 2)]
