"""The frozen :class:`Workload`: what run to cost (model, mode, batch, parallelism, memory options)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from enum import Enum

from ..spec.model import DType
from .layout import Layout, Piece, parse_layout
from .models import ModelConfig


class Mode(Enum):
    TRAIN = "train"
    PREFILL = "prefill"
    DECODE = "decode"


class Recompute(Enum):
    NONE = "none"
    SELECTIVE = "selective"     # Korthikanti §5: recompute QK^T, softmax, dropout, attention over V
    FULL = "full"               # keep only each layer's input
    OP = "op"                   # torchtitan's per-op selective checkpointing: keep the outputs of every other
                                # matmul and of the attention kernel, recompute the rest (workload/recompute.py)


class RecomputeModule(Enum):
    """What ``recompute: selective`` re-runs in backward (Megatron-LM's ``--recompute-modules``,
    megatron/core/transformer/transformer_config.py; Megatron Core MoE report, arXiv 2603.07685 §4).
    Each drops the tensors its module would keep for backward and runs the module's forward again
    before the layer's backward (workload/recompute.py)."""

    CORE_ATTN = "core_attn"             # QK^T, softmax, attention over V (Korthikanti §5): the default
    LAYERNORM = "layernorm"             # a norm whose output a separate linear reads
    MLP = "mlp"                         # a dense FFN: up projection, activation, down projection
    MOE = "moe"                         # a whole mixture-of-experts FFN: router, dispatch, experts, combine
    MOE_ACT = "moe_act"                 # the routed experts' activation function
    SHARED_EXPERTS = "shared_experts"   # the shared experts' FFN
    MLA_UP_PROJ = "mla_up_proj"         # multi-head latent attention's up projections (q_up, kv_up)


class Loss(Enum):
    STANDARD = "standard"       # materialises logits, fp32 upcast, log-softmax and its gradient
    CCE = "cce"                 # Cut Cross-Entropy (Wijmans et al. 2024): no N x V buffers
    FUSED = "fused"             # Transformer Engine's parallel cross-entropy (Megatron's cross_entropy_loss_fusion,
                                # impl te): works on the bf16 logits in place, writing their gradient over them


class Optimizer(Enum):
    ADAM = "adam"               # mixed precision: fp32 master + m + v = 12 B/param (ZeRO paper, K = 12)
    ADAMW = "adamw"
    SGD = "sgd"                 # fp32 master + momentum = 8 B/param
    MUON = "muon"               # Muon (Jordan et al. 2024; Liu et al. 2025, arXiv 2502.16982): momentum + Newton-Schulz
                                # orthogonalised updates for the layers' weight matrices (8 B/param), AdamW for the
                                # embedding and output layer (12 B/param)
    NONE = "none"


class Framework(Enum):
    """What runs a training step's kernels (workload/eager.py)."""

    FUSED = "fused"             # Megatron-LM / DeepSpeed style: bf16 weights, fused Adam, fused norms and loss
    EAGER = "eager"             # eager PyTorch: torch.autocast over fp32 weights, torch.optim's foreach AdamW,
                                # aten's LayerNorm / softmax / cross-entropy kernels
    COMPILED = "compiled"       # torch.compile'd blocks and loss (Inductor's fused kernels) under autocast over
                                # fp32 weights, torch.optim's fused AdamW (torchtitan style)


class OptimizerKernel(Enum):
    """How torch.optim runs the update in ``framework: eager`` or ``compiled`` (workload/eager.py)."""

    FOREACH = "foreach"         # torch.optim's default: one multi-tensor kernel per arithmetic step
    FUSED = "fused"             # torch.optim.AdamW(fused=True): one kernel reads and writes each tensor once


class Recipe(Enum):
    """Low-precision training / serving recipes for the layers' linear GEMMs (workload/precision.py)."""

    NONE = "none"                   # every GEMM in the workload's dtype
    FP8_DELAYED = "fp8-delayed"     # FP8, one scale per tensor from the amax history (Micikevicius et al. 2022,
                                    # arXiv 2209.05433 §4.3; Transformer Engine's DelayedScaling)
    FP8_CURRENT = "fp8-current"     # FP8, one scale per tensor from its current amax (TE Float8CurrentScaling,
                                    # torchao's tensorwise)
    FP8_BLOCKWISE = "fp8-blockwise"  # FP8, a scale per 1 x 128 activation / gradient tile and 128 x 128 weight
                                     # block (DeepSeek-V3, arXiv 2412.19437 §3.3.2)
    MXFP8 = "mxfp8"                 # FP8 with an 8-bit power-of-two scale per 32 elements (OCP MX v1.0; Blackwell)
    NVFP4 = "nvfp4"                 # FP4 E2M1 with an FP8 E4M3 scale per 16 elements and an FP32 one per tensor
                                    # (NVIDIA, arXiv 2509.25149; Blackwell)


@dataclass(frozen=True)
class Precision:
    """Which recipe the transformer layers' linear GEMMs (forward, dgrad, wgrad) run in. Attention,
    norms, the embedding, the router and the output layer stay in the workload's dtype; the last
    ``high_precision_layers`` layers keep their linears in it too (the NVFP4 recipe keeps a few
    sensitive layers in BF16, arXiv 2509.25149)."""

    recipe: Recipe = Recipe.NONE
    high_precision_layers: int = 0
    # training under the fused framework: the quantized layers' weights live only in the recipe's
    # format, the optimizer's fp32 master copy the only high-precision one (Megatron's
    # --fp8-param-gather, Transformer Engine's fp8_model_init). None: Megatron-Bridge's recipes' choice,
    # on for per-tensor FP8 and MXFP8, off for blockwise FP8 and NVFP4
    quantized_weights: bool | None = None

    def weights_stored_quantized(self) -> bool:
        """Whether the fused framework keeps the quantized layers' weights only in the recipe's format."""
        if self.quantized_weights is not None:
            return self.quantized_weights and self.dtype is not None
        return self.recipe in (Recipe.FP8_DELAYED, Recipe.FP8_CURRENT, Recipe.MXFP8)

    @property
    def dtype(self) -> DType | None:
        """The GEMM operands' format, None without a recipe."""
        if self.recipe is Recipe.NONE:
            return None
        return DType.FP4 if self.recipe is Recipe.NVFP4 else DType.FP8

    def scale_bytes(self, weight: bool) -> float:
        """Scale-factor bytes per quantized element: 4 per 128 (1 x 128 FP32 tiles) or 4 per 128 x 128
        for blockwise weights; 1 per 32 (E8M0) for MXFP8; 1 per 16 (E4M3) for NVFP4's activations and
        gradients, 1 per 16 x 16 for its 2D-scaled weights; per-tensor scales are negligible."""
        r = self.recipe
        if r is Recipe.FP8_BLOCKWISE:
            return 4.0 / (128 * 128) if weight else 4.0 / 128
        if r is Recipe.MXFP8:
            return 1.0 / 32
        if r is Recipe.NVFP4:
            return 1.0 / 256 if weight else 1.0 / 16
        return 0.0

    def element_bytes(self, weight: bool) -> float:
        """Bytes per quantized element, its share of the scales included."""
        return self.dtype.bytes + self.scale_bytes(weight) if self.dtype else 0.0

    def quantized(self, layer: int, layers: int) -> bool:
        """Whether ``layer``'s linears run in the recipe."""
        return self.dtype is not None and 0 <= layer < layers - self.high_precision_layers


class PipeSchedule(Enum):
    GPIPE = "gpipe"
    ONE_F_ONE_B = "1f1b"
    INTERLEAVED = "interleaved"
    ZB_H1 = "zb-h1"
    V_HALF = "v-half"
    V_MIN = "v-min"


@functools.lru_cache(maxsize=1024)
def stage_layers(layers: int, pp: int, interleave: int = 1, extra_last: int = 0) -> tuple[int, ...]:
    """Transformer layers on each of ``pp`` pipeline stages: equal when pp divides them; otherwise
    ceil(layers / pp) each, less one on the first and last stages, then the second and the
    second-to-last, ..., for the pp x ceil - layers left over: those stages also run the embedding
    and the output layer (Llama 3, arXiv 2407.21783 §3.3.2: 126 layers on 16 stages, one fewer on
    the first and the last). With ``interleave`` v > 1: the layers each device holds over its v
    model chunks (device_layers). ``extra_last``: slots of the split the last stage spends on
    modules that are not layers (training's multi-token prediction modules, as Megatron-Bridge's
    pipeline layouts give them one: "m" in DeepSeek-V3's "Et*3|(tt|)*29m|L"); its layers are that
    many fewer, the stages before it giving up the rest when it has too few."""
    if interleave > 1:
        return tuple(len(d) for d in device_layers(layers, pp, interleave, extra_last))
    total = layers + extra_last
    per = -(-total // pp)
    counts = [per] * pp
    ends = []
    for i in range(pp):
        for j in (i, pp - 1 - i):
            if j not in ends:
                ends.append(j)
    for j in ends[:per * pp - total]:
        counts[j] -= 1
    left = extra_last
    for j in reversed(range(pp)):
        take = min(left, counts[j])
        counts[j] -= take
        left -= take
    return tuple(counts)


def stage_starts(layers: int, pp: int, extra_last: int = 0) -> tuple[int, ...]:
    """The first layer of each pipeline stage (stage_layers)."""
    out, first = [], 0
    for c in stage_layers(layers, pp, extra_last=extra_last):
        out.append(first)
        first += c
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def device_layers(layers: int, pp: int, interleave: int = 1, extra_last: int = 0) -> tuple[tuple[int, ...], ...]:
    """The layers each of ``pp`` pipeline devices holds. Without interleaving, a contiguous stage
    each (stage_layers); with ``interleave`` v > 1, the layers split into pp x v model chunks by the
    same rule (where pp x v does not divide them, the first and last chunks, which also run the
    embedding and the loss, are one layer lighter, as Megatron-LM's pipeline layouts for
    DeepSeek-V3's 61 layers), chunk c on device c mod pp (Narayanan et al. 2021 §2.2);
    ``extra_last`` as in stage_layers, on the last chunk."""
    n = pp * max(1, interleave)
    out: list[list[int]] = [[] for _ in range(pp)]
    for c, (first, count) in enumerate(zip(stage_starts(layers, n, extra_last), stage_layers(layers, n, 1, extra_last))):
        out[c % pp].extend(range(first, first + count))
    return tuple(tuple(d) for d in out)


@dataclass(frozen=True)
class Parallelism:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1                       # expert parallelism: experts sharded over ep of the dp ranks
    ep_imbalance: float = 1.0         # with ep: the hottest rank's expected share of routed tokens over the mean
                                      # from skewed routing (1: every expert equally likely; measure yours)
    sp: bool = False
    tp_overlap: bool = False          # with sp: each tensor-parallel all-gather / reduce-scatter runs under the GEMM
                                      # it feeds or drains (Megatron-LM --tp-comm-overlap, userbuffers; torchtitan's
                                      # async TP), so only what the GEMM does not cover shows (workload/overlap.py)
    attention_dp: bool = False        # serving: attention data-parallel over the TP group, each rank its own
                                      # sequences with whole attention weights and KV cache; the FFN / experts
                                      # stay TP-split over the gathered tokens (SGLang's DP attention)
    interleave: int = 1
    schedule: PipeSchedule = PipeSchedule.ONE_F_ONE_B
    layout: str = ""                  # Megatron's pipeline layout: the embedding, layers, MTP modules and loss of
                                      # each model chunk (workload/layout.py); "" -> the even split of stage_layers

    @property
    def replicas(self) -> int:
        """Ranks that hold the same parameters and reduce their gradients together (and share a
        ZeRO shard): the data-parallel ranks times the context-parallel ones, whose sequence
        chunks train the same weights (Megatron-LM's data-parallel-with-context-parallel group)."""
        return self.dp * self.cp


@dataclass(frozen=True)
class MemoryOptions:
    recompute: Recompute = Recompute.NONE
    recompute_modules: frozenset = frozenset()     # RecomputeModule; recompute: selective with none -> core_attn
    recompute_layers: int = 0          # recompute: full on only the first N layers of each model chunk (Megatron's
                                       # --recompute-method block --recompute-num-layers N); 0 -> every layer
    offload_layers: int = 0            # training, no pipeline: the activations of the first N layers go to host
                                       # memory in forward and come back for backward (Megatron's --cpu-offloading
                                       # --cpu-offloading-num-layers N, Transformer Engine's CPU offload context)
    flash_attention: bool = True
    zero_stage: int = 0
    kv_bits: float = 16.0
    kv_group_size: int = 128           # elements sharing one scale + zero point when kv_bits < 16
    kv_outlier_fraction: float = 0.0   # dense-and-sparse outliers kept in fp16 (KVQuant: 1%)
    activation_bits: float = 16.0
    loss: Loss = Loss.STANDARD
    weight_bits: float = 0.0           # serving: weight-only quantization of the layers' linear weights (AWQ,
                                       # GPTQ: 4; FP8 or INT8 weights with 16-bit activations: 8), dequantized
                                       # in the GEMM kernel, which computes in the workload's dtype; 0 -> dtype
    weight_group_size: int = 128       # weights sharing one scale (and zero point) when weight_bits is set
    weight_scale_bits: float = 32.0    # bits of each group's scale and zero point: 16 + 16 (AWQ, GPTQ); an
                                       # MXFP4 group of 32 has one 8-bit power-of-two scale (gpt-oss's experts)

    def recomputed(self, recompute: Recompute | None = None) -> frozenset:
        """The modules a selective recompute re-runs (Megatron's default: the attention core);
        empty for none and full. ``recompute`` overrides the workload's own setting."""
        if (self.recompute if recompute is None else recompute) is not Recompute.SELECTIVE:
            return frozenset()
        return self.recompute_modules or frozenset({RecomputeModule.CORE_ATTN})

    def recompute_label(self) -> str:
        """``none``, ``full``, ``selective`` (the attention core) or the modules, ``+``-joined."""
        if self.recompute is not Recompute.SELECTIVE or not self.recompute_modules:
            return self.recompute.value
        return "+".join(sorted(m.value for m in self.recompute_modules))

    def weight_bits_effective(self, dtype_bits: float) -> float:
        """Bits per stored layer weight: weight_bits plus each group's scale and zero point (AWQ, Lin
        et al. 2024 §3; GPTQ, Frantar et al. 2023: 16-bit each, group 128; OCP MX v1.0: one 8-bit
        scale per 32), or the dtype's."""
        if not self.weight_bits or self.weight_bits >= dtype_bits:
            return dtype_bits
        return self.weight_bits + self.weight_scale_bits / self.weight_group_size


@dataclass(frozen=True)
class DecodeOptions:
    context_len: int = 0               # prompt tokens already in the KV cache
    new_tokens: int = 1
    samples: int = 1                   # sequences per prompt (best-of-N) sharing the prompt's KV
    speculative_tokens: int = 0        # draft tokens proposed per step by a one-layer drafter (DeepSeek-V3's
                                       # MTP module, EAGLE) and verified in one pass of the model; 0: none
    acceptance: float = 0.0            # chance that each draft token is accepted, given the ones before it
    draft_model: ModelConfig | None = None   # a separate draft model (same tokenizer) instead of the one-layer
                                             # drafter: k decode steps of it per step

    @property
    def tokens_per_step(self) -> float:
        """Tokens a sequence gains per step: with k draft tokens each accepted with chance a, the
        expected accepted prefix plus the one the verifier adds, (1 - a^(k+1)) / (1 - a)
        (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative Decoding", Eq. 1)."""
        k, a = self.speculative_tokens, self.acceptance
        return float(k + 1) if k and a >= 1.0 else (1.0 - a ** (k + 1)) / (1.0 - a) if k else 1.0


class AllReduceKernel(Enum):
    """What a serving engine's tensor-parallel all-reduce runs inside one NVLink node: NCCL's ring
    or tree, or the engine's own one-/two-shot kernel (vLLM's and TensorRT-LLM's custom
    all-reduce, up to 8 MiB: cost/comm.py custom_all_reduce_time_s)."""

    NCCL = "nccl"
    CUSTOM = "custom"


@dataclass(frozen=True)
class EngineOptions:
    """Serving-engine overheads that replace the spec's engine_step_overhead / engine_per_token /
    engine_host_per_layer / engine_per_worker.

    None keeps the spec's value. The engine is software (vLLM, TensorRT-LLM, a research engine),
    so a workload can name its own; docs/workloads.md lists the fitted figures."""
    step_overhead_s: float | None = None    # per iteration: scheduler, sampling launch, Python
    per_sequence_s: float | None = None     # per sequence and iteration: bookkeeping, sampling
    host_per_layer_s: float | None = None   # host dispatch per layer, overlapped with the GPU (max of the two)
    per_worker_s: float | None = None       # per iteration and extra worker process (TP x PP - 1): input broadcast
    all_reduce: AllReduceKernel = AllReduceKernel.NCCL   # the tensor-parallel all-reduce's kernel


@dataclass(frozen=True)
class Workload:
    name: str
    model: ModelConfig
    mode: Mode
    seq_len: int
    global_batch: int
    micro_batch: int
    dtype: DType
    optimizer: Optimizer
    devices: int
    parallelism: Parallelism = Parallelism()
    memory: MemoryOptions = MemoryOptions()
    decode: DecodeOptions = DecodeOptions()
    engine: EngineOptions = EngineOptions()
    precision: Precision = Precision()
    framework: Framework = Framework.FUSED
    optimizer_kernel: OptimizerKernel | None = None    # eager / compiled only; None: foreach eager, fused compiled
    source: str = ""

    @property
    def step_kernel(self) -> OptimizerKernel:
        """The optimizer kernel the step runs: the workload's, else its framework's default (the
        fused framework's own update, Megatron-style, is a fused kernel)."""
        if self.optimizer_kernel is not None:
            return self.optimizer_kernel
        return OptimizerKernel.FOREACH if self.framework is Framework.EAGER else OptimizerKernel.FUSED

    @property
    def grad_bytes(self) -> float:
        """Bytes per gradient element the framework accumulates and reduces: Megatron-LM (fused)
        keeps a bf16 model's gradients in fp32 (its main_grad buffer; --accumulate-allreduce-grads-in-fp32,
        Megatron-Bridge's grad_reduce_in_fp32); PyTorch's the dtype's."""
        return 4.0 if self.framework is Framework.FUSED and self.dtype is DType.BF16 else self.dtype.bytes

    @property
    def mtp_modules(self) -> int:
        """Multi-token prediction modules a step runs: the model's (ModelConfig.mtp_layers) when
        training; serving runs them only as a drafter (decode.speculative_tokens)."""
        return self.model.mtp_layers if self.mode is Mode.TRAIN else 0

    def layout(self) -> Layout | None:
        """The parallelism's pipeline layout (workload/layout.py), or None for the even split."""
        par = self.parallelism
        if not par.layout:
            return None
        return parse_layout(par.layout, par.pp * par.interleave, self.model.layers, self.mtp_modules)

    def device_layers(self) -> tuple[tuple[int, ...], ...]:
        """The layers each pipeline device holds: by the layout, or the even split (device_layers)
        with a slot of the last chunk per multi-token prediction module."""
        par = self.parallelism
        layout = self.layout()
        if layout is not None:
            return layout.device_layers(par.pp)
        return device_layers(self.model.layers, par.pp, par.interleave, self.mtp_modules)

    def piece_devices(self) -> tuple[int, int, int]:
        """The pipeline devices of the embedding, the output layer and loss, and the multi-token
        prediction modules: by the layout, else the first, the last (the first again for a V-shaped
        schedule, whose second chunk ends there: Qi et al. 2024) and the output layer's."""
        par = self.parallelism
        layout = self.layout()
        if layout is not None:
            mtp = layout.device_of(Piece.MTP, par.pp) if self.mtp_modules else layout.device_of(Piece.LOSS, par.pp)
            return 0, layout.device_of(Piece.LOSS, par.pp), mtp
        last = 0 if par.schedule in (PipeSchedule.V_HALF, PipeSchedule.V_MIN) else par.pp - 1
        return 0, last, last

    def chunk_starts(self) -> tuple[int, ...]:
        """The first layer of each model chunk (pp x interleave of them): by the layout, or the even
        split (stage_starts)."""
        par = self.parallelism
        layout = self.layout()
        if layout is not None:
            return layout.chunk_starts()
        return stage_starts(self.model.layers, par.pp * par.interleave, self.mtp_modules)

    def stage_layers(self) -> tuple[int, ...]:
        """How many layers each pipeline device holds (stage_layers, as device_layers)."""
        return tuple(len(d) for d in self.device_layers())

    @property
    def microbatches(self) -> int:
        """Micro-batches per pipeline per step: global batch / (micro batch x data-parallel size)."""
        return max(1, self.global_batch // (self.micro_batch * self.parallelism.dp))


def replace_memory(wl: Workload, **changes) -> Workload:
    """``wl`` with ``changes`` to its memory options."""
    return replace(wl, memory=replace(wl.memory, **changes))
