"""Turn a :class:`Workload` into an op graph for one micro-batch on one tensor-parallel rank.

FLOP counts follow Korthikanti et al. 2022 (arXiv 2205.05198) App. A: a GEMM of m x k by k x n
is 2mkn FLOPs; attention scores and attention over V are 2·b·s²·h each over the full s x s matrix
when the kernel computes it (unfused attention, as in the paper), and half of that for a causal
model under FlashAttention, which skips the masked blocks (Dao 2023, §3.1); model FLOPs count what
the causal math needs, so MFU at long sequences is not inflated by masked work. Backward is twice
forward for GEMMs.
FlashAttention's backward executes 2.5x its forward (it recomputes QK^T: Dao 2023, §3.1).
Model FLOPs (MFU) count matrix multiplications only, as Eq. 7 does; norms, activations and the
loss execute FLOPs that the convention leaves out.
"""
from __future__ import annotations

from dataclasses import replace

from ..spec.model import DType
from .graph import Collective, Graph, LinkScope, Op, OpKind, Phase, shape
from .models import Position, Recurrent
from .eager import compiled_ops, eager_ops
from .spec import Framework, Mode, Optimizer, Recompute, Workload, stage_layers, stage_starts

_OPT_BYTES_PER_PARAM = {  # bytes read + written per parameter by one optimizer step
    Optimizer.ADAM: 4 * 4 + 2 + 3 * 4 + 2,     # read fp32 p, m, v, grad; write p, m, v, bf16 copy
    Optimizer.ADAMW: 4 * 4 + 2 + 3 * 4 + 2,
    Optimizer.SGD: 3 * 4 + 2 * 4 + 2,
    Optimizer.NONE: 0,
}


def build_graph(wl: Workload, compact: bool = False) -> Graph:
    """The ops of one micro-batch (train, prefill) or one decode step, on one TP rank.

    ``compact=True`` emits the first layer of each pipeline stage once with ``count`` = layers
    per stage (all layers of a stage are identical); totals are the same, and it is ~20x faster.
    """
    m, par = wl.model, wl.parallelism
    e = wl.dtype.bytes
    k = wl.decode.speculative_tokens if wl.mode is Mode.DECODE else 0
    if wl.mode is Mode.DECODE:
        batch = wl.micro_batch * wl.decode.samples
        # speculative decoding verifies the k draft tokens and the next one in one pass
        s_q, s_kv = 1 + k, wl.decode.context_len + max(1, wl.decode.new_tokens) // 2 + k
    else:
        batch, s_q = wl.micro_batch, wl.seq_len // par.cp
        s_kv = wl.seq_len
    n = batch * s_q                      # tokens per micro-batch on this rank
    train = wl.mode is Mode.TRAIN
    recompute = wl.memory.recompute if train else Recompute.NONE
    ops: list[Op] = []
    ops.append(Op("embedding", OpKind.EMBEDDING, Phase.FWD, -1, 0.0, wl.dtype,
                  weight_bytes=n * m.hidden * e, input_bytes=n * 8, output_bytes=n * m.hidden * e,
                  shape=shape(elements=n * m.hidden)))
    groups = _layer_groups(m, par.pp) if compact else [(i, 1) for i in range(m.layers)]
    ids = [i for i, _ in groups]
    layer_fwd = [_layer_ops(wl, i, n, batch, s_q, s_kv, Phase.FWD) for i in ids]
    if compact:
        layer_fwd = [[replace(op, count=c) for op in ops_i] for ops_i, (_, c) in zip(layer_fwd, groups)]
    for ops_i in layer_fwd:
        ops.extend(ops_i)
    head_tokens = n if wl.mode is not Mode.PREFILL else batch
    ops.extend(_head_ops(wl, head_tokens, Phase.FWD))
    ops.extend(_draft_ops(wl, batch, s_kv, k))
    if train:
        ops.extend(b for op in reversed(_head_ops(wl, head_tokens, Phase.FWD)) for b in _backward(op))
        for i in reversed(range(len(ids))):
            if recompute is Recompute.FULL:
                ops.extend(_as_recompute(op) for op in _recomputed(wl, layer_fwd[i]))
            elif recompute is Recompute.SELECTIVE and not wl.memory.flash_attention:
                ops.extend(_as_recompute(op) for op in layer_fwd[i] if op.name.startswith("attn."))
            ops.extend(b for op in reversed(layer_fwd[i]) for b in _backward(op))
        ops.extend(_backward(ops[0]))
        ops.extend(_optimizer_ops(wl))
        if wl.framework is Framework.EAGER:     # autocast casts, fp32 residual stream, aten kernels (eager.py)
            ops = eager_ops(wl, ops, wl.microbatches)
        elif wl.framework is Framework.COMPILED:    # autocast casts around Inductor's fused kernels
            ops = compiled_ops(wl, ops, wl.microbatches)
    return Graph(name=wl.name, ops=tuple(ops), layers=m.layers, tokens=n)


def _draft_ops(wl: Workload, batch: int, s_kv: int, k: int) -> list[Op]:
    """The drafter of speculative decoding: k sequential draft tokens, each from one more
    transformer layer of the model's last layer's kind that takes the hidden state and the last
    token's embedding through a 2h x h projection and shares the output head (DeepSeek-V3's
    multi-token prediction module, arXiv 2412.19437 §2.2, as served for speculation; EAGLE's
    one-layer drafter, Li et al. 2024). It runs on the last pipeline stage, one decode step each.
    With ``decode.draft_model`` each draft token is instead one decode step of that model (its
    embedding, layers and head, on the same tensor-parallel ranks; Leviathan et al. 2023)."""
    m, dt = wl.model, wl.dtype
    ops: list[Op] = []
    last = m.layers - 1
    draft_model = wl.decode.draft_model
    if k and draft_model is not None:
        dwl = replace(wl, model=draft_model, parallelism=replace(wl.parallelism, pp=1),
                      decode=replace(wl.decode, speculative_tokens=0, draft_model=None))
        step = [replace(op, layer=last) for op in build_graph(dwl, compact=True).ops]
        return [replace(op, name=f"draft{j}.{op.name}") for j in range(k) for op in step]
    for j in range(k):
        draft = [_gemm("mtp_proj", last, Phase.FWD, dt, batch, 2 * m.hidden, m.hidden)]
        draft += _layer_ops(wl, last, batch, batch, 1, s_kv, Phase.FWD)
        draft += _head_ops(wl, batch, Phase.FWD)
        ops += [replace(op, name=f"draft{j}.{op.name}") for op in draft]
    return ops


def _layer_groups(m, pp: int) -> list[tuple[int, int]]:
    """(first layer, count) of each kind of layer (ModelConfig.layer_kind: dense or routed FFN,
    windowed or global attention) within each pipeline stage, in order of first appearance."""
    out = []
    for first, count in zip(stage_starts(m.layers, pp), stage_layers(m.layers, pp)):
        kinds: dict = {}
        for i in range(first, first + count):
            j, c = kinds.get(m.layer_kind(i), (i, 0))
            kinds[m.layer_kind(i)] = (j, c + 1)
        out += sorted(kinds.values())
    return out


def _gemm(name, layer, phase, dtype, m_, k, n, *, batch=1, weight=True) -> Op:
    e = dtype.bytes
    return Op(name, OpKind.GEMM, phase, layer, 2.0 * batch * m_ * k * n, dtype,
              weight_bytes=k * n * e * batch if weight else 0.0,
              input_bytes=m_ * k * e * batch + (0.0 if weight else k * n * e * batch),
              output_bytes=m_ * n * e * batch, shape=shape(m=m_, n=n, k=k, batch=batch))


def _elementwise(name, kind, layer, phase, dtype, elements, reads=1, writes=1, flops_per=1.0) -> Op:
    e = dtype.bytes
    return Op(name, kind, phase, layer, flops_per * elements, dtype, input_bytes=reads * elements * e,
              output_bytes=writes * elements * e, model_flops=0.0, shape=shape(elements=elements))


def _tp_comm(wl: Workload, name: str, layer: int, phase: Phase, elements: float) -> list[Op]:
    """Megatron TP: an all-reduce after the attention and the MLP block (reduce-scatter with SP)."""
    par = wl.parallelism
    if par.tp == 1:
        return []
    if not par.sp:
        return [_collective(wl, name, layer, phase, Collective.ALL_REDUCE, elements)]
    return [_collective(wl, name, layer, phase, Collective.REDUCE_SCATTER, elements),
            _collective(wl, name + ".ag", layer, phase, Collective.ALL_GATHER, elements)]


_COLL_CODE = {c: i for i, c in enumerate(Collective)}
COLLECTIVE_BY_CODE = {i: c for c, i in _COLL_CODE.items()}
SCOPE_BY_CODE = {0: LinkScope.INTRA, 1: LinkScope.INTER}


def _layer_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase) -> list[Op]:
    m, t, dt = wl.model, wl.parallelism.tp, wl.dtype
    h = m.hidden
    # data-parallel attention: this rank attends for its own batch / tp sequences with whole heads,
    # then all-gathers the tokens for the TP-split FFN and reduce-scatters them back (SGLang's DP
    # attention, as served for DeepSeek-V3: the MLA latent cache is then not replicated)
    dpa = wl.parallelism.attention_dp
    ta, na, ba = (1, n // t, batch // t) if dpa else (t, n, batch)
    ops: list[Op] = []
    if m.has_mixer(i):      # (a block_pattern layer has its mixer or its FFN only)
        ops.append(_elementwise(f"attn_norm.{i}", OpKind.NORM, i, phase, dt, na * h, flops_per=5))
        attention = _recurrent_ops if m.is_recurrent(i) else _mla_ops if m.mla else _attention_ops
        ops += attention(wl, i, na, ba, s_q, s_kv, phase, ta)
        if not dpa:
            ops.extend(_tp_comm(wl, f"tp_attn.{i}", i, phase, n * h))
        ops.append(_elementwise(f"residual1.{i}", OpKind.ELEMENTWISE, i, phase, dt, na * h, reads=2))
    if not m.has_ffn(i):
        return ops
    ops.append(_elementwise(f"mlp_norm.{i}", OpKind.NORM, i, phase, dt, na * h, flops_per=5))
    if dpa:
        ops.append(_collective(wl, f"dpa_gather.{i}", i, phase, Collective.ALL_GATHER, n * h))
    ops.extend(_moe_ops(wl, i, n, phase) if m.is_moe_layer(i) else _mlp_ops(wl, i, n, n, m.ffn // t, 1.0, phase))
    if dpa:
        ops.append(_collective(wl, f"dpa_scatter.{i}", i, phase, Collective.REDUCE_SCATTER, n * h))
    else:
        ops.extend(_tp_comm(wl, f"tp_mlp.{i}", i, phase, n * h))
    ops.append(_elementwise(f"residual2.{i}", OpKind.ELEMENTWISE, i, phase, dt, na * h, reads=2))
    return ops


def _collective(wl: Workload, name: str, layer: int, phase: Phase, kind: Collective, elements: float) -> Op:
    """One collective of ``elements`` (the whole tensor) over the tensor-parallel group."""
    nbytes = elements * wl.dtype.bytes
    return Op(name, OpKind.COLLECTIVE, phase, layer, 0.0, wl.dtype, input_bytes=nbytes, output_bytes=nbytes,
              shape=shape(collective=_COLL_CODE[kind], bytes=nbytes, ranks=wl.parallelism.tp, scope=0))


def _attention_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase,
                   t: int) -> list[Op]:
    """Multi-head or grouped-query attention with its heads split over ``t`` ranks: one QKV GEMM,
    RoPE, the attention kernel, the output projection."""
    m, dt = wl.model, wl.dtype
    h = m.hidden
    heads, kv_heads = m.heads // t, max(1, m.kv_heads // t)
    q_dim, kv_dim = heads * m.head_dim, kv_heads * m.head_dim
    gate = q_dim if m.attention_gate else 0
    ops = [_gemm(f"qkv.{i}", i, phase, dt, n, h, q_dim + gate + 2 * kv_dim)]
    if m.position is Position.ROPE:
        ops.append(_elementwise(f"rope.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * (q_dim + kv_dim), flops_per=3))
    ops += _cp_gather(wl, i, phase, batch, s_q, kv_heads * 2 * m.head_dim)
    ops.append(_attention(wl, i, batch, s_q, s_kv, phase, heads, kv_heads, m.head_dim, 2 * m.head_dim))
    if gate:    # gated attention: output x sigmoid(gate), element by element (Qwen3-Next)
        ops.append(_elementwise(f"attn_gate.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * q_dim, reads=2, flops_per=5))
    ops.append(_gemm(f"attn_out.{i}", i, phase, dt, n, q_dim, h))
    return ops


def _recurrent_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase,
                   t: int) -> list[Op]:
    """A recurrent token mixer with its heads split over ``t`` ranks: the input projection, the
    causal depthwise convolution (and SiLU) over its query, key and value channels, the chunked
    scan, the gated RMSNorm of its output by z, the output projection (Qwen3-Next's Gated DeltaNet
    layer; Mamba-2's block, Dao & Gu 2024 §7).

    The scan runs chunks of Q tokens (recurrent_chunk; a decode step is a chunk of its s_q tokens).
    Per token and value head of key width K and value width V it executes (Dao & Gu 2024 §6, the
    SSD algorithm: intra-chunk C·B^T and its product with X, chunk state and output from state;
    Yang et al. 2024, arXiv 2406.06484 §3, the chunkwise delta rule's K·K^T, its UT transform
    applied to K and V, Q·K^T and the intra-chunk output, three K x V state products):
    Mamba-2 2·Q·V + 4·K·V, plus 2·Q·K per key head (B and C are shared by the heads of a group);
    Gated DeltaNet Q·(6K + 4V) + Q²/3 + 6·K·V. It reads the convolved q, k, v and the gates,
    writes the output, and writes then reads each chunk's K x V states; a decode step instead
    reads and writes the sequence's state at recurrent_state_bits, a prefill writes it once."""
    m, dt = wl.model, wl.dtype
    e = dt.bytes
    hk, hv = max(1, m.recurrent_key_heads // t), max(1, m.recurrent_value_heads // t)
    dk, dv = m.recurrent_key_dim, m.recurrent_value_dim
    conv_dim = 2 * hk * dk + hv * dv
    gates = hv * m.recurrent_gates
    q = min(m.recurrent_chunk, s_q)
    if m.recurrent is Recurrent.MAMBA2:
        per_token = hv * (2 * q * dv + 4 * dk * dv) + hk * 2 * q * dk
    else:
        per_token = hv * (q * (6 * dk + 4 * dv) + q * q / 3 + 6 * dk * dv)
    state = batch * hv * dk * dv
    state_e = m.recurrent_state_bits / 8
    # kernels per scan: flash-linear-attention's chunked gated delta rule runs six (decay cumsum, K·K^T,
    # its triangular solve, w and u, chunk states, output), mamba_ssm's chunked scan five (dt cumsum,
    # chunk states, state passing, C·B^T, output); a decode step is one fused recurrent kernel
    launches = 5 if m.recurrent is Recurrent.MAMBA2 else 6
    # the delta rule carries its state from chunk to chunk through matrix products (W·S, then
    # K^T(U - W·S): Yang et al. 2024 §3.2), a sequential chain of s_q / Q steps per sequence that the
    # cost model prices (cost/roofline.py scan_chain_s); Mamba-2 passes its chunk states by an
    # elementwise scan (Dao & Gu 2024 §6, "state passing"), too light to bound the kernel
    steps = -(-s_q // m.recurrent_chunk) if m.recurrent is Recurrent.GATED_DELTANET else 0
    if wl.mode is Mode.DECODE:
        steps = 0
        launches = 1
        state_io = 2 * state * state_e
        conv_io = 2 * batch * conv_dim * (m.recurrent_conv - 1) * e     # the convolution's rolling inputs
    else:
        chunks = batch * -(-s_q // m.recurrent_chunk)
        state_io = 2 * chunks * hv * dk * dv * e + (state * state_e if wl.mode is Mode.PREFILL else 0.0)
        conv_io = 0.0
    scan = Op(f"lin_scan.{i}", OpKind.SCAN, phase, i, n * per_token, dt,
              input_bytes=n * (conv_dim + gates) * e + state_io / 2, output_bytes=n * hv * dv * e + state_io / 2,
              shape=shape(tokens=n, heads=hv, chunk=q, launches=float(launches), seqs=batch, vdim=dv,
                          steps=float(steps)))
    conv = _elementwise(f"lin_conv.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * conv_dim,
                        flops_per=2 * m.recurrent_conv + 4)
    conv = replace(conv, input_bytes=conv.input_bytes + conv_io / 2, output_bytes=conv.output_bytes + conv_io / 2)
    return [_gemm(f"lin_in.{i}", i, phase, dt, n, m.hidden, conv_dim + hv * dv + gates), conv, scan,
            _elementwise(f"lin_norm.{i}", OpKind.NORM, i, phase, dt, n * hv * dv, reads=2, flops_per=7),
            _gemm(f"lin_out.{i}", i, phase, dt, n, hv * dv, m.hidden)]


def _mla_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase, t: int) -> list[Op]:
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434 §2.1; V3, arXiv 2412.19437 §2.1.1).

    The query comes through its latent c_Q (W_DQ, RMSNorm, W_UQ) or one projection; the key-value
    latent c_KV and the shared RoPE key through W_DKV and W_KR (one GEMM), then an RMSNorm. Down-
    projections and norms run whole on every TP rank, the rest per head as Megatron splits heads.
    Training and prefill run it unabsorbed, as multi-head attention: W_UK and W_UV up-project every
    token's K (qk_nope) and V (v_head_dim), and the kernel's QK^T uses head_dim = qk_nope + rope
    dims, its AV v_head_dim; the attention op carries their mean, which keeps both its FLOPs and
    the K + V bytes per token exact. Decode runs it absorbed (§2.1.2; vLLM's and SGLang's MLA
    backends, FlashMLA): each head's q_nope is taken into latent space by W_UK (a batched GEMM over
    heads), the kernel attends over the cached latents as one KV head shared by all query heads
    (QK^T over kv_lora_rank + rope dims, AV over kv_lora_rank, K and V one cached vector), and W_UV
    brings each head's output back to v_head_dim before W_O. Heads are split over ``t`` ranks."""
    m, dt = wl.model, wl.dtype
    h, heads = m.hidden, m.heads // t
    c, rope, v = m.kv_lora_rank, m.rope_head_dim, m.v_head_dim
    nope = m.head_dim - rope
    ops: list[Op] = []
    if m.q_lora_rank:
        ops += [_gemm(f"q_down.{i}", i, phase, dt, n, h, m.q_lora_rank),
                _norm(f"q_norm.{i}", i, phase, dt, n, m.q_lora_rank),
                _gemm(f"q_up.{i}", i, phase, dt, n, m.q_lora_rank, heads * m.head_dim)]
    else:
        ops.append(_gemm(f"q_proj.{i}", i, phase, dt, n, h, heads * m.head_dim))
    ops += [_gemm(f"kv_down.{i}", i, phase, dt, n, h, c + rope),
            _norm(f"kv_norm.{i}", i, phase, dt, n, c),
            _elementwise(f"rope.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * (heads + 1) * rope, flops_per=3)]
    if wl.mode is Mode.DECODE:
        ops.append(_gemm(f"q_absorb.{i}", i, phase, dt, n, nope, c, batch=heads))
        ops.append(_attention(wl, i, batch, s_q, s_kv, phase, heads, 1, (2 * c + rope) / 2, c + rope))
        ops.append(_gemm(f"o_absorb.{i}", i, phase, dt, n, c, v, batch=heads))
    else:
        ops.append(_gemm(f"kv_up.{i}", i, phase, dt, n, c, heads * (nope + v)))
        ops += _cp_gather(wl, i, phase, batch, s_q, heads * (m.head_dim + v))
        ops.append(_attention(wl, i, batch, s_q, s_kv, phase, heads, heads, (m.head_dim + v) / 2, m.head_dim + v))
    ops.append(_gemm(f"attn_out.{i}", i, phase, dt, n, heads * v, h))
    return ops


def _cp_gather(wl: Workload, i: int, phase: Phase, batch: int, s_q: int, kv_elems: float) -> list[Op]:
    """Context parallelism: every rank gathers the whole sequence's K and V (``kv_elems`` per token
    on this TP rank) from the cp ranks of its group, which sit tp devices apart (Llama 3's
    all-gather context parallelism, arXiv 2407.21783 §3.3.2; the backward reduce-scatters dK, dV)."""
    cp = wl.parallelism.cp
    if cp == 1 or wl.mode is Mode.DECODE:
        return []
    nbytes = batch * s_q * cp * kv_elems * wl.dtype.bytes
    return [Op(f"cp_kv.{i}", OpKind.COLLECTIVE, phase, i, 0.0, wl.dtype, input_bytes=nbytes, output_bytes=nbytes,
               shape=shape(collective=_COLL_CODE[Collective.ALL_GATHER], bytes=nbytes, ranks=cp, scope=1,
                           inner=float(wl.parallelism.tp)))]


def _norm(name: str, layer: int, phase: Phase, dtype: DType, tokens: float, width: int) -> Op:
    """A norm over rows of ``width`` elements (shape key row; the layer norms' rows are hidden wide)."""
    op = _elementwise(name, OpKind.NORM, layer, phase, dtype, tokens * width, flops_per=5)
    return replace(op, shape=shape(elements=tokens * width, row=float(width)))


def _attention(wl: Workload, i: int, batch: int, s_q: int, s_kv: int, phase: Phase, heads: int, kv_heads: int,
               d: float, kv_token: float) -> Op:
    """The attention kernel of ``heads`` query heads over ``kv_heads`` KV heads: head_dim ``d`` (the
    mean of the QK^T and AV dims: FLOPs 4·d per query-key pair and head) and ``kv_token`` elements
    cached per key token and KV head (K and V: 2·head_dim; MLA's shared latent: its width)."""
    m, dt = wl.model, wl.dtype
    if wl.mode is Mode.DECODE and s_q > 1:
        # speculative verification: a sequence's few new queries share its keys, and decode kernels
        # pack them with the query heads onto the same KV (FlashMLA's h_q x s_q rows, pack-GQA)
        heads, s_q = heads * s_q, 1
    causal = m.causal and wl.mode is not Mode.DECODE
    w = m.sliding_window if m.is_windowed(i) else 0
    if causal and wl.parallelism.cp > 1 and s_q * wl.parallelism.cp == s_kv:
        # context parallelism splits the sequence in 2 x cp chunks, each rank taking an early and a
        # late one, so every rank does the same share of the causal work (load-balanced CP: Llama 3
        # §3.3.2; Megatron-LM's zig-zag): its queries see half the keys on average, priced as a
        # full (non-causal) attention over s_kv / 2 keys
        causal, s_kv = False, s_kv // 2
    full = 4.0 * batch * heads * s_q * s_kv * d          # QK^T + AV, full matrix
    executed = full * (0.5 if causal and s_q == s_kv else 1.0) if wl.memory.flash_attention else full
    if w and wl.memory.flash_attention and s_kv > w:
        # a window of w keys: decode reads the last w; a causal square drops the triangle beyond it
        # (w·s - w²/2 query-key pairs of s²/2); a chunk attends to at most w + s_q keys
        if s_q == 1:
            executed = 4.0 * batch * heads * w * d
        elif causal and s_q == s_kv:
            executed = 4.0 * batch * heads * d * (w * s_kv - w * w / 2.0)
        else:
            executed = full * min(1.0, (w + s_q) / s_kv)
    e = dt.bytes
    kv_e = wl.memory.kv_bits / 8 if wl.mode is Mode.DECODE else e
    # prefill and decode run on a serving engine's paged KV cache (vLLM, TensorRT-LLM); training
    # attention is dense (cost/roofline.py attention_time_s)
    att_shape = shape(batch=batch, heads=heads, kv_heads=kv_heads, seq_q=s_q, seq_kv=s_kv,
                      head_dim=d, causal=float(causal), flash=float(wl.memory.flash_attention),
                      paged=float(wl.mode is not Mode.TRAIN),
                      **({} if kv_token == 2 * d else {"kv_token_elems": float(kv_token)}),
                      **({"window": float(w)} if w else {}))
    q_dim = heads * d
    keys = min(s_kv, w + s_q - 1) if w else s_kv          # keys the kernel reads per sequence
    io = dict(input_bytes=batch * s_q * q_dim * e + batch * keys * kv_heads * kv_token * kv_e,
              output_bytes=batch * s_q * q_dim * e)
    if not wl.memory.flash_attention:  # unfused: scores, softmax and dropout round-trip HBM (Korthikanti §4.1)
        # softmax output + dropout mask (1 B) + dropout output written, then read by A x V
        act_bytes = wl.memory.activation_bits / 8
        scores = batch * heads * s_q * s_kv
        io["output_bytes"] += scores * (2 * act_bytes + 1)
        io["input_bytes"] += scores * act_bytes
    return Op(f"attn.{i}", OpKind.ATTENTION, phase, i, executed, dt, shape=att_shape, **io)


def _mlp_ops(wl: Workload, i: int, tokens: float, m_: float, ffn: int, groups: float, phase: Phase,
             prefix: str = "mlp") -> list[Op]:
    """Up projection (gate and up when gated), activation, down projection of ``tokens`` tokens, as
    ``groups`` GEMMs of ``m_`` rows each (one per active expert; 1 for a dense FFN)."""
    m, dt = wl.model, wl.dtype
    up_n = (2 if m.activation.gated else 1) * ffn
    return [_gemm(f"{prefix}_up.{i}", i, phase, dt, m_, m.hidden, up_n, batch=groups),
            _elementwise(f"{prefix}_act.{i}", OpKind.ELEMENTWISE, i, phase, dt, tokens * ffn,
                         reads=2 if m.activation.gated else 1, flops_per=8),
            _gemm(f"{prefix}_down.{i}", i, phase, dt, m_, ffn, m.hidden, batch=groups)]


def _moe_ops(wl: Workload, i: int, n: int, phase: Phase) -> list[Op]:
    """Mixture of experts (Shazeer et al. 2017; Mixtral, arXiv 2401.04088): a router GEMM and top-k
    gate, each token's hidden state copied to its k experts, every active expert's FFN as one GEMM
    group over its tokens (experts sharded over the tensor-parallel ranks, as vLLM runs Mixtral),
    and the k outputs combined; shared experts (DeepSeekMoE) as one more dense FFN that every token
    passes. Active experts: ModelConfig.active_experts (uniform routing).
    Expert parallelism (ep > 1; GShard, arXiv 2006.16668): a rank holds experts / ep experts and
    receives, by an all-to-all over the ep group, the copies routed to them (balanced routing: n x k
    per rank), which a second all-to-all returns."""
    m, dt, h, ep = wl.model, wl.dtype, wl.model.hidden, wl.parallelism.ep
    k = m.experts_per_token
    routed = n * k                                   # token-expert pairs this rank sends and receives
    active = max(1.0, m.active_experts(n * ep) / ep)   # of this rank's experts / ep, hit by the group's tokens
    ops = [_gemm(f"moe_router.{i}", i, phase, dt, n, h, m.experts),
           _elementwise(f"moe_gate.{i}", OpKind.SOFTMAX, i, phase, dt, n * m.experts, flops_per=5),
           _elementwise(f"moe_dispatch.{i}", OpKind.ELEMENTWISE, i, phase, dt, routed * h, reads=1, writes=1,
                        flops_per=0)]
    a2a = _all_to_all(wl, f"moe_a2a.{i}", i, phase, routed * h * dt.bytes) if ep > 1 else []
    ops += a2a
    ops += _mlp_ops(wl, i, routed, routed / active, m.expert_ffn // wl.parallelism.tp, active, phase)
    ops += [replace(op, name=op.name.replace("moe_a2a", "moe_a2a_back")) for op in a2a]
    ops.append(_elementwise(f"moe_combine.{i}", OpKind.ELEMENTWISE, i, phase, dt, routed * h, reads=1, writes=0,
                            flops_per=2))
    if m.shared_expert_ffn:   # every token also passes the shared experts, one dense FFN split over TP
        ops += _mlp_ops(wl, i, n, n, m.shared_expert_ffn // wl.parallelism.tp, 1.0, phase, prefix="moe_shared")
    return ops


def _all_to_all(wl: Workload, name: str, layer: int, phase: Phase, nbytes: float) -> list[Op]:
    """An all-to-all over the expert-parallel group (ep of the data-parallel ranks: scope 1, so the
    group spans ep x tp x cp devices)."""
    return [Op(name, OpKind.COLLECTIVE, phase, layer, 0.0, wl.dtype, input_bytes=nbytes, output_bytes=nbytes,
               shape=shape(collective=_COLL_CODE[Collective.ALL_TO_ALL], bytes=nbytes, ranks=wl.parallelism.ep,
                           scope=1))]


def _head_ops(wl: Workload, tokens: int, phase: Phase) -> list[Op]:
    m, t, dt = wl.model, wl.parallelism.tp, wl.dtype
    vocab = m.vocab // t if m.vocab % t == 0 else -(-m.vocab // t)
    ops = [_elementwise("final_norm", OpKind.NORM, -1, phase, dt, tokens * m.hidden, flops_per=5),
           _gemm("lm_head", -1, phase, dt, tokens, m.hidden, vocab)]
    if wl.mode is Mode.TRAIN:
        ops.append(_elementwise("loss", OpKind.LOSS, -1, phase, DType.FP32, tokens * vocab, reads=1, writes=1, flops_per=5))
    return ops


def _backward(op: Op) -> list[Op]:
    """Backward of a forward op: a GEMM becomes its dgrad and wgrad GEMMs (2x FLOPs together);
    flash attention executes 2.5x its forward; other ops move twice the bytes."""
    name = op.name + ".bwd"
    if op.kind is OpKind.GEMM:
        s = op.shape
        m_, n, k, b = s["m"], s["n"], s["k"], s.get("batch", 1)
        e = op.dtype.bytes
        # dgrad: dX[m,k] = dY[m,n] · W^T[n,k]; wgrad: dW[k,n] = X^T[k,m] · dY[m,n]
        dgrad = Op(op.name + ".dgrad", op.kind, Phase.BWD, op.layer, op.flops, op.dtype,
                   weight_bytes=op.weight_bytes, input_bytes=b * m_ * n * e, output_bytes=b * m_ * k * e,
                   shape=shape(m=m_, n=k, k=n, batch=b), count=op.count)
        wgrad = Op(op.name + ".wgrad", op.kind, Phase.BWD, op.layer, op.flops, op.dtype,
                   input_bytes=b * (m_ * n + m_ * k) * e, output_bytes=op.weight_bytes or b * k * n * e,
                   shape=shape(m=k, n=n, k=m_, batch=b), count=op.count)
        return [dgrad, wgrad]
    if op.kind is OpKind.ATTENTION:
        flash = bool(op.shape.get("flash", 1.0))
        return [Op(name, op.kind, Phase.BWD, op.layer, op.flops * (2.5 if flash else 2.0), op.dtype,
                  model_flops=2 * op.mflops, input_bytes=op.input_bytes + 2 * op.output_bytes,
                  output_bytes=op.input_bytes, shape=op.shape, count=op.count)]
    if op.kind is OpKind.COLLECTIVE:
        return [Op(name, op.kind, Phase.BWD, op.layer, 0.0, op.dtype, input_bytes=op.input_bytes,
                   output_bytes=op.output_bytes, shape=op.shape, count=op.count)]
    return [Op(name, op.kind, Phase.BWD, op.layer, 2 * op.flops, op.dtype, weight_bytes=op.weight_bytes,
               input_bytes=op.input_bytes + op.output_bytes, output_bytes=op.input_bytes,
               model_flops=2 * op.mflops, shape=op.shape, count=op.count)]


def _recomputed(wl: Workload, layer: list[Op]) -> list[Op]:
    """The forward ops a full recompute runs again. torch.utils.checkpoint (non-reentrant, eager
    and compiled frameworks) stops as soon as every tensor backward needs has been packed again
    (set_checkpoint_early_stop, on by default): the MLP's down projection saves its inputs before
    it runs, so it and the residual add after it are not recomputed. Megatron's checkpoint
    (the fused framework) re-runs the whole layer."""
    if wl.framework is Framework.FUSED:
        return layer
    last = max((j for j, op in enumerate(layer) if op.name.startswith("mlp_down")), default=len(layer))
    return layer[:last]


def _as_recompute(op: Op) -> Op:
    return Op(op.name + ".recompute", op.kind, Phase.RECOMPUTE, op.layer, op.flops, op.dtype,
              weight_bytes=op.weight_bytes, input_bytes=op.input_bytes, output_bytes=op.output_bytes,
              model_flops=op.model_flops, shape=op.shape, count=op.count)


def _optimizer_ops(wl: Workload) -> list[Op]:
    """Data-parallel gradient reduction and the optimizer update, for this rank's parameter shard."""
    from ..cost.memory import expert_params_per_device, params_per_device

    par = wl.parallelism
    p_local = params_per_device(wl, sharded_by_zero=False)
    # an expert's replicas are the dp / ep ranks that hold it: its gradients reduce over those only
    p_expert = expert_params_per_device(wl) if par.ep > 1 else 0.0
    ops: list[Op] = []
    # the dense weights' replicas are the dp x cp ranks, tp devices apart; a routed expert's are the
    # dp / ep ranks that hold it (times cp), ep x tp x cp apart (cost/estimate.py OpCoster.comm_time)
    for name, params, ranks, group in (("dp", p_local - p_expert, par.replicas, {"inner": float(par.tp)}),
                                       ("dp_expert", p_expert, par.dp // par.ep * par.cp, {"stride": par.ep})):
        if ranks <= 1 or params <= 0:
            continue
        grad_bytes = params * wl.dtype.bytes
        kind = Collective.REDUCE_SCATTER if wl.memory.zero_stage >= 1 else Collective.ALL_REDUCE
        ops.append(Op(f"{name}_grad_reduce", OpKind.COLLECTIVE, Phase.OPTIMIZER, -1, 0.0, wl.dtype,
                      input_bytes=grad_bytes, output_bytes=grad_bytes,
                      shape=shape(collective=_COLL_CODE[kind], bytes=grad_bytes, ranks=ranks, scope=1, **group)))
        if wl.memory.zero_stage >= 1:
            ops.append(Op(f"{name}_param_gather", OpKind.COLLECTIVE, Phase.OPTIMIZER, -1, 0.0, wl.dtype,
                          input_bytes=grad_bytes, output_bytes=grad_bytes,
                          shape=shape(collective=_COLL_CODE[Collective.ALL_GATHER], bytes=grad_bytes,
                                      ranks=ranks, scope=1, **group)))
    shard = p_local / (par.replicas if wl.memory.zero_stage >= 1 else 1)
    per = _OPT_BYTES_PER_PARAM[wl.optimizer]
    if per:
        ops.append(Op("optimizer_step", OpKind.OPTIMIZER, Phase.OPTIMIZER, -1, 10.0 * shard, DType.FP32,
                      input_bytes=shard * per * 0.6, output_bytes=shard * per * 0.4,
                      shape=shape(elements=shard)))
    return ops
