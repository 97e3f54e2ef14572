"""Token mixers of one transformer layer on one tensor-parallel rank: multi-head / grouped-query
attention, multi-head latent attention, recurrent mixers (Gated DeltaNet, Mamba-2), the attention
kernel op and context parallelism's K/V gather (workload/transformer.py builds the layer)."""
from __future__ import annotations

from dataclasses import replace

from .graph import Collective, Op, OpKind, Phase, shape
from .models import Position, Recurrent
from .opbuild import COLL_CODE, elementwise, gemm, norm
from .sparse_attention import indexer_ops, sparse_attention_op
from .spec import DecodeOptions, Mode, Optimizer, Workload


def attention_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase,
                   t: int) -> list[Op]:
    """Multi-head or grouped-query attention with its heads split over ``t`` ranks: one QKV GEMM,
    RoPE, the attention kernel, the output projection."""
    m, dt = wl.model, wl.dtype
    h = m.hidden
    heads, kv_heads = m.heads // t, max(1, m.kv_heads // t)
    q_dim, kv_dim = heads * m.head_dim, kv_heads * m.head_dim
    gate = q_dim if m.attention_gate else 0
    ops = [gemm(f"qkv.{i}", i, phase, dt, n, h, q_dim + gate + 2 * kv_dim)]
    if m.position is Position.ROPE:
        ops.append(elementwise(f"rope.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * (q_dim + kv_dim), flops_per=3))
    ops += cp_gather(wl, i, phase, batch, s_q, kv_heads * 2 * m.head_dim)
    ops.append(attention_op(wl, i, batch, s_q, s_kv, phase, heads, kv_heads, m.head_dim, 2 * m.head_dim))
    if gate:    # gated attention: output x sigmoid(gate), element by element (Qwen3-Next)
        ops.append(elementwise(f"attn_gate.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * q_dim, reads=2, flops_per=5))
    ops.append(gemm(f"attn_out.{i}", i, phase, dt, n, q_dim, h))
    return ops


def recurrent_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase,
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
    conv = elementwise(f"lin_conv.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * conv_dim,
                        flops_per=2 * m.recurrent_conv + 4)
    conv = replace(conv, input_bytes=conv.input_bytes + conv_io / 2, output_bytes=conv.output_bytes + conv_io / 2)
    return [gemm(f"lin_in.{i}", i, phase, dt, n, m.hidden, conv_dim + hv * dv + gates), conv, scan,
            elementwise(f"lin_norm.{i}", OpKind.NORM, i, phase, dt, n * hv * dv, reads=2, flops_per=7),
            gemm(f"lin_out.{i}", i, phase, dt, n, hv * dv, m.hidden)]


def mla_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase, t: int) -> list[Op]:
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
    brings each head's output back to v_head_dim before W_O. Heads are split over ``t`` ranks.
    With DeepSeek sparse attention (index_topk) the layer also runs its lightning indexer, and a
    prompt longer than index_topk attends absorbed, each query over its top-k latents
    (workload/sparse_attention.py); decode reads index_topk latents."""
    m, dt = wl.model, wl.dtype
    h, heads = m.hidden, m.heads // t
    c, rope, v = m.kv_lora_rank, m.rope_head_dim, m.v_head_dim
    nope = m.head_dim - rope
    ops: list[Op] = []
    if m.q_lora_rank:
        ops += [gemm(f"q_down.{i}", i, phase, dt, n, h, m.q_lora_rank),
                norm(f"q_norm.{i}", i, phase, dt, n, m.q_lora_rank),
                gemm(f"q_up.{i}", i, phase, dt, n, m.q_lora_rank, heads * m.head_dim)]
    else:
        ops.append(gemm(f"q_proj.{i}", i, phase, dt, n, h, heads * m.head_dim))
    ops += [gemm(f"kv_down.{i}", i, phase, dt, n, h, c + rope),
            norm(f"kv_norm.{i}", i, phase, dt, n, c),
            elementwise(f"rope.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * (heads + 1) * rope, flops_per=3)]
    sparse = m.sparse and s_kv > m.index_topk      # some query has more keys than its indexer keeps
    if m.sparse:
        ops += indexer_ops(wl, i, n, batch, s_q, s_kv, phase)
    if wl.mode is Mode.DECODE or sparse:
        # absorbed (MQA mode): decode, and DeepSeek sparse attention, which attends over the selected
        # latents with all heads sharing them (DeepSeek-V3.2-Exp report §2.1; FlashMLA's sparse kernels)
        ops.append(gemm(f"q_absorb.{i}", i, phase, dt, n, nope, c, batch=heads))
        if wl.mode is Mode.DECODE:
            ops.append(attention_op(wl, i, batch, s_q, s_kv, phase, heads, 1, (2 * c + rope) / 2, c + rope,
                                    window=m.index_topk if m.sparse else None))
        else:
            ops += cp_gather(wl, i, phase, batch, s_q, c + rope + m.index_key_bytes / dt.bytes)
            ops.append(sparse_attention_op(wl, i, batch, s_q, s_kv, phase, heads, (2 * c + rope) / 2, c + rope))
        ops.append(gemm(f"o_absorb.{i}", i, phase, dt, n, c, v, batch=heads))
    else:
        ops.append(gemm(f"kv_up.{i}", i, phase, dt, n, c, heads * (nope + v)))
        ops += cp_gather(wl, i, phase, batch, s_q, heads * (m.head_dim + v))
        ops.append(attention_op(wl, i, batch, s_q, s_kv, phase, heads, heads, (m.head_dim + v) / 2, m.head_dim + v))
    ops.append(gemm(f"attn_out.{i}", i, phase, dt, n, heads * v, h))
    return ops


def cp_gather(wl: Workload, i: int, phase: Phase, batch: int, s_q: int, kv_elems: float) -> list[Op]:
    """Context parallelism: every rank gathers the whole sequence's K and V (``kv_elems`` per token
    on this TP rank) from the cp ranks of its group, which sit tp devices apart (Llama 3's
    all-gather context parallelism, arXiv 2407.21783 §3.3.2; the backward reduce-scatters dK, dV)."""
    cp = wl.parallelism.cp
    if cp == 1 or wl.mode is Mode.DECODE:
        return []
    nbytes = batch * s_q * cp * kv_elems * wl.dtype.bytes
    return [Op(f"cp_kv.{i}", OpKind.COLLECTIVE, phase, i, 0.0, wl.dtype, input_bytes=nbytes, output_bytes=nbytes,
               shape=shape(collective=COLL_CODE[Collective.ALL_GATHER], bytes=nbytes, ranks=cp, scope=1,
                           inner=float(wl.parallelism.tp)))]


def attention_op(wl: Workload, i: int, batch: int, s_q: int, s_kv: int, phase: Phase, heads: int, kv_heads: int,
               d: float, kv_token: float, window: int | None = None) -> Op:
    """The attention kernel of ``heads`` query heads over ``kv_heads`` KV heads: head_dim ``d`` (the
    mean of the QK^T and AV dims: FLOPs 4·d per query-key pair and head) and ``kv_token`` elements
    cached per key token and KV head (K and V: 2·head_dim; MLA's shared latent: its width).
    ``window``: keys a decode query reads at most (a sparse-attention decode step's top-k), in
    place of the layer's sliding window."""
    m, dt = wl.model, wl.dtype
    if wl.mode is Mode.DECODE and s_q > 1:
        # speculative verification: a sequence's few new queries share its keys, and decode kernels
        # pack them with the query heads onto the same KV (FlashMLA's h_q x s_q rows, pack-GQA)
        heads, s_q = heads * s_q, 1
    causal = m.causal and wl.mode is not Mode.DECODE
    w = window if window is not None else m.sliding_window if m.is_windowed(i) else 0
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
    # attention is dense (cost/attention.py attention_time_s)
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


def scan_op(recurrent: Recurrent, batch: float, seq_q: float, value_heads: float, key_heads: float,
            head_dim: float, dtype, chunk: int = 0) -> Op:
    """The scan op recurrent_ops prices, for one measured kernel: ``batch`` sequences of ``seq_q``
    tokens (1: a decode step that reads and writes each state), ``value_heads`` and ``key_heads``
    of ``head_dim`` (key and value widths alike; Mamba-2: its heads, groups, head dim = state size
    too). A validation row's op (simhw validate, kind scan)."""
    from .models import ModelConfig
    b, s, hv, hk, d = (int(v) for v in (batch, seq_q, value_heads, key_heads, head_dim))
    model = ModelConfig(name="scan", layers=1, hidden=hv * d, heads=1, ffn=1, vocab=1, recurrent=recurrent,
                        recurrent_key_heads=hk, recurrent_key_dim=d, recurrent_value_heads=hv, recurrent_value_dim=d,
                        recurrent_chunk=chunk)
    wl = Workload(name="scan", model=model, mode=Mode.DECODE if s == 1 else Mode.PREFILL, seq_len=s,
                  global_batch=b, micro_batch=b, dtype=dtype, optimizer=Optimizer.NONE, devices=1,
                  decode=DecodeOptions(context_len=s, new_tokens=1))
    return next(op for op in recurrent_ops(wl, 0, b * s, b, s, s, Phase.FWD, 1) if op.kind is OpKind.SCAN)
