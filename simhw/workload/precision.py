"""Low-precision linears: the graph pass that runs the transformer layers' linear GEMMs in FP8 or
NVFP4 (``precision.recipe``), with the quantization kernels those recipes add.

What a recipe changes (Micikevicius et al. 2022, arXiv 2209.05433; Transformer Engine; torchao.float8;
DeepSeek-V3, arXiv 2412.19437 §3.3; NVIDIA, arXiv 2509.25149):

- Each layer linear's three GEMMs (forward X·W, dgrad dY·Wᵀ, wgrad Xᵀ·dY) read quantized operands
  (1 B per FP8 element, 0.5 B per FP4 one, plus the recipe's scales) and compute at the format's
  tensor-core rate; they write their outputs in the workload's dtype. Attention, norms, the router,
  the embedding and the output layer stay in the dtype.
- Training casts each GEMM input X and each incoming gradient dY once, writing a row-wise copy and a
  column-wise one (the transposed operand of the wgrad GEMM; block scales run along the reduction
  dimension, so each use needs its own copy): reads 2 B, writes 2 x 1 B per element for FP8. A
  per-tensor current scale (and NVFP4's FP32 tensor scale) needs the tensor's amax before the cast:
  one more read pass (torchao/float8/roofline_utils.py counts the same kernels; its "fuse_with_prev"
  case, the amax taken inside the producing kernel, is not assumed). Delayed scaling uses the amax
  history and block / MX scales are computed inside the cast: one pass. NVFP4's random Hadamard
  transform of the wgrad operands runs inside the cast too (16 x 16, not priced).
- Weights are cast the same way. Under the fused framework (Megatron-LM with Transformer Engine) the quantized
  weights are cached across a step's micro-batches, so they are cast once per step after the update
  (and held, row- and column-wise: cost/memory.py), and each linear saves its input's column-wise
  copy for wgrad. Under eager or compiled PyTorch (torchao's Float8Linear,
  torchao/float8/float8_linear.py matmul_with_hp_or_float8_args) each linear saves its input and
  weight in the dtype: the forward casts them row-wise only, and the backward casts the weight
  again for dgrad and the input again for wgrad.
- Serving (prefill, decode) stores the weights quantized; each GEMM input is quantized by the kernel
  that produces it (serving engines fuse the per-token quantization into the norm, the activation
  and the attention epilogue: vLLM's fused RMSNorm / SiLU-and-mul quant kernels, TensorRT-LLM's
  fused epilogues), so no cast kernel of its own is priced.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import MissingPeakError, WorkloadError
from ..spec.model import DType
from ..yamlio import check_keys
from .graph import Op, OpKind, Phase, shape
from .opbuild import backward_ops, gemm
from .spec import Framework, Mode, Precision, Recipe, Workload

_KEEP = ("moe_router", "mtp_proj")          # linears no recipe quantizes (routing logits; the drafter's input)
_SEPARATE_AMAX = (Recipe.FP8_CURRENT, Recipe.NVFP4)   # a tensor-wide amax pass before each cast
PER_TENSOR = (Recipe.FP8_DELAYED, Recipe.FP8_CURRENT)    # one scale per tensor
_SUFFIXES = (".dgrad", ".wgrad", ".recompute")


def parse_precision(value: Any, where: str, model_layers: int) -> Precision:
    """``precision: RECIPE`` or ``precision: {recipe: RECIPE, high_precision_layers: N}``."""
    if value is None:
        return Precision()
    if isinstance(value, str):
        value = {"recipe": value}
    data = check_keys(value, ("recipe", "high_precision_layers", "quantized_weights"), f"{where}precision", WorkloadError)
    text = str(data.get("recipe", "none")).strip().lower()
    try:
        recipe = Recipe(text)
    except ValueError:
        allowed = ", ".join(r.value for r in Recipe)
        raise WorkloadError(f"{where}precision.recipe: {text!r} is not allowed; choose one of: {allowed}.") from None
    hp = data.get("high_precision_layers", 0)
    if isinstance(hp, bool) or not isinstance(hp, int) or not 0 <= hp <= model_layers:
        raise WorkloadError(f"{where}precision.high_precision_layers: expected a whole number of layers from 0 to "
                            f"{model_layers} (the model's), got {hp!r}.")
    qw = data.get("quantized_weights")
    if qw is not None and not isinstance(qw, bool):
        raise WorkloadError(f"{where}precision.quantized_weights: expected true or false, got {qw!r}.")
    if qw and recipe is Recipe.NONE:
        raise WorkloadError(f"{where}precision.quantized_weights: there is no recipe to store the weights in "
                            f"(precision.recipe is none); name one or drop quantized_weights.")
    return Precision(recipe=recipe, high_precision_layers=hp, quantized_weights=qw)


def quantized_fraction(wl: Workload) -> float:
    """The share of the layers whose linears run in the recipe (0 without one)."""
    p, layers = wl.precision, wl.model.layers
    return 0.0 if p.dtype is None else (layers - p.high_precision_layers) / layers


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _quantizable(op: Op, wl: Workload) -> bool:
    name = op.name.split(".", 1)[1] if op.name.startswith("draft") else op.name    # a drafter's ops: draftN.<op>
    return (op.kind is OpKind.GEMM and op.phase in (Phase.FWD, Phase.RECOMPUTE) and op.weight_bytes > 0
            and wl.precision.quantized(op.layer, wl.model.layers) and not name.startswith(_KEEP))


def cast_op(name: str, op: Op, elements: float, src_bytes: float, copies: int, q_bytes: float,
            amax_pass: bool, per_tensor: bool = False) -> Op:
    """A quantization kernel: reads ``elements`` in the dtype (twice with a separate amax pass),
    writes ``copies`` quantized copies of ``q_bytes`` per element. A per-tensor-scaled second copy is
    only a transpose for TN-only FP8 GEMMs: shape key transpose_bytes, which cost/roofline.py drops
    on a device whose FP8 GEMMs take any layout (efficiency.fp8_any_layout)."""
    reads = elements * src_bytes * (2 if amax_pass else 1)
    keys = {"transpose_bytes": elements * q_bytes} if per_tensor and copies > 1 else {}
    return Op(name, OpKind.ELEMENTWISE, op.phase, op.layer, 4.0 * elements, op.dtype, input_bytes=reads,
              output_bytes=copies * elements * q_bytes, model_flops=0.0, shape=shape(elements=elements, **keys),
              count=op.count)


def quantize_gemm(op: Op, p: Precision, a_weight: bool, b_weight: bool) -> Op:
    """``op`` in the recipe's format: operands at their quantized bytes (scales included), output in
    its own dtype; shape keys in_bits / weight_bits / out_bits tell the GEMM model (cost/roofline.py)."""
    s = op.shape
    m, n, k, b = s["m"], s["n"], s["k"], s.get("batch", 1)
    e = op.dtype.bytes
    qa, qb = p.element_bytes(a_weight), p.element_bytes(b_weight)
    return replace(op, dtype=p.dtype, input_bytes=op.input_bytes - b * m * k * e * (1 - qa / e)
                   - (0.0 if op.weight_bytes else b * k * n * e * (1 - qb / e)),
                   weight_bytes=op.weight_bytes * qb / e,
                   shape=shape(**s, in_bits=8 * qa, weight_bits=8 * qb, out_bits=8 * e))


def low_precision_ops(wl: Workload, ops: list[Op]) -> list[Op]:
    """The graph with the recipe's layer linears and their casts (module docstring)."""
    p = wl.precision
    if p.dtype is None:
        return ops
    train = wl.mode is Mode.TRAIN
    per_step = train and wl.framework is Framework.FUSED
    amax = p.recipe in _SEPARATE_AMAX
    tensor = p.recipe in PER_TENSOR
    qa, qw = p.element_bytes(False), p.element_bytes(True)
    bases = {op.name for op in ops if _quantizable(op, wl)}
    stage = max(wl.stage_layers()) / wl.model.layers
    out: list[Op] = []
    step_weights = 0.0
    for op in ops:
        base = _base(op.name)
        if op.kind is not OpKind.GEMM or base not in bases or op.phase is Phase.OPTIMIZER:
            out.append(op)
            continue
        s = op.shape
        m, n, k, b = s["m"], s["n"], s["k"], s.get("batch", 1)
        e = op.dtype.bytes
        if op.name.endswith(".dgrad"):          # dY (m x k here) cast row-wise for this GEMM and column-wise for wgrad
            out.append(cast_op(f"quant_grad.{base}", op, b * m * k, e, 2, qa, amax, tensor))
            if not per_step:                    # torchao: the weight (n x k here) is cast again
                out.append(cast_op(f"quant_w_bwd.{base}", op, b * k * n, e, 1, qw, amax))
            out.append(quantize_gemm(op, p, False, True))
        elif op.name.endswith(".wgrad"):        # dY cast already; Xᵀ (m x k here) saved quantized, or cast again
            if not per_step:
                out.append(cast_op(f"quant_in_bwd.{base}", op, b * m * k, e, 1, qa, amax))
            out.append(quantize_gemm(op, p, False, False))
        else:
            if train:
                out.append(cast_op(f"quant_in.{op.name}", op, b * m * k, e, 2 if per_step else 1, qa, amax, tensor))
            if train and op.phase is Phase.FWD:
                if per_step:
                    step_weights += b * k * n * op.count * stage
                else:
                    out.append(cast_op(f"quant_w.{op.name}", op, b * k * n, e, 1, qw, amax))
            out.append(quantize_gemm(op, p, False, True))
    if step_weights:
        ref = next(op for op in ops if op.name in bases)
        out.append(replace(cast_op("quant_weights", ref, step_weights, ref.dtype.bytes, 2, qw, amax, tensor),
                           phase=Phase.OPTIMIZER, layer=-1, count=1))
    return out


def linear_ops(wl: Workload, m: float, k: float, n: float, layer: int = 0) -> list[Op]:
    """One linear layer (m x k input, k x n weight) as ``wl`` runs it: its forward GEMM, in training
    its dgrad and wgrad, with the recipe's casts (torchao's question "is float8 faster for this
    linear?", torchao/float8/README.md "Performance")."""
    fwd = gemm("linear", layer, Phase.FWD, wl.dtype, m, k, n)
    return low_precision_ops(wl, [fwd, *(backward_ops(fwd) if wl.mode is Mode.TRAIN else ())])


_BLOCK_SCALED = (Recipe.MXFP8, Recipe.NVFP4)


def check_precision_support(p: Precision, device) -> None:
    """A recipe needs tensor cores of its format: MXFP8 and NVFP4 GEMMs apply their block scales
    inside the MMA, which Blackwell's tensor cores do (a spec that lists an fp4 peak); per-tensor
    and blockwise FP8 need an fp8 peak (Hopper, Ada and later; DeepSeek's blockwise scaling
    promotes its partial sums on the CUDA cores instead, DeepGEMM)."""
    if p.dtype is None:
        return
    need = DType.FP4 if p.recipe in _BLOCK_SCALED else DType.FP8
    if need not in device.peak_flop_per_s:
        have = ", ".join(d.value for d in device.peak_flop_per_s) or "none"
        raise MissingPeakError(f"{device.name}: precision {p.recipe.value} needs {need.value} tensor cores"
                               f"{' with block scaling (Blackwell)' if need is DType.FP4 else ''}, and its spec "
                               f"lists compute peaks for {have}; choose another recipe or a device that has them.")
