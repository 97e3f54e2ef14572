"""DeepSeek sparse attention (DSA): the lightning indexer and the sparse attention kernel of one
layer on one tensor-parallel rank (DeepSeek-V3.2-Exp technical report, 2025, §2.1; DeepSeek-V3.2,
arXiv 2512.02556 §2). workload/mixers.py mla_ops places them in a multi-head latent attention layer.

For every query token t and earlier token s the indexer scores I(t, s) = sum over its H heads of
w(t, j) · ReLU(q(t, j) · k(s)) (Eq. 1): H query heads of width d from the query latent, one key of
width d per token (cached, FP8), per-head weights w from the hidden state. Each query then attends,
in MLA's MQA mode (all heads share the cached latent), to the index_topk keys scoring highest
(Eq. 2), so the core attention costs O(L·k) rather than O(L²); the indexer stays O(L²) but with
few heads, in FP8. The indexer's weights are whole on every TP rank (its linears are replicated in
DeepSeek's inference code, vLLM and SGLang).
"""
from __future__ import annotations

from ..spec.model import DType
from .graph import Op, OpKind, Phase, shape
from .opbuild import elementwise, gemm, norm
from .spec import Mode, Workload

_SCORE_BYTES = 4.0     # the indexer's logits are written in FP32 before the top-k pass (DeepGEMM fp8_mqa_logits)


def selected_keys(s_q: float, s_kv: float, k: int) -> float:
    """Mean keys a causal query attends to when it keeps at most ``k``: the queries are the last
    ``s_q`` of ``s_kv`` positions, the one at position p (from 1) seeing min(p, k) keys."""
    s_q, s_kv = max(1.0, float(s_q)), max(1.0, float(s_kv))
    first = s_kv - s_q                                   # keys before the first query
    under = max(0.0, min(float(k) - first, s_q))         # queries at positions <= k
    total = under * first + under * (under + 1) / 2 + (s_q - under) * k
    return total / s_q


def indexer_ops(wl: Workload, i: int, n: int, batch: int, s_q: int, s_kv: int, phase: Phase) -> list[Op]:
    """The lightning indexer over ``n`` tokens (``batch`` sequences of ``s_q`` queries, ``s_kv``
    keys): its query projection from the query latent (from the hidden state without one), the key
    and head-weight projections from the hidden state (one fused GEMM), the key's LayerNorm, RoPE and the Hadamard
    rotation of queries and keys before FP8 quantisation (DeepSeek-V3.2's inference code), then
    the FP8 logits kernel over the cached keys, whose FP32 scores a top-k pass reads
    (cost/attention.py, shape key scores_out)."""
    m, dt = wl.model, wl.dtype
    heads, d = m.index_heads, m.index_head_dim
    rotate = (heads + 1) * d
    ops = [gemm(f"idx_q.{i}", i, phase, dt, n, m.q_lora_rank or m.hidden, heads * d),
           # the key projection and the per-head weights share their input: one GEMM (SGLang's and
           # vLLM's fused wk_weights_proj)
           gemm(f"idx_kw.{i}", i, phase, dt, n, m.hidden, d + heads),
           norm(f"idx_k_norm.{i}", i, phase, dt, n, d),
           # RoPE on the rope dims, a Hadamard transform (log2 d butterfly stages) and FP8 quantisation
           elementwise(f"idx_rotate.{i}", OpKind.ELEMENTWISE, i, phase, dt, n * rotate,
                       flops_per=float(d.bit_length()) + 4.0)]
    return ops + [_logits_op(wl, i, batch, s_q, s_kv, phase)]


def _logits_op(wl: Workload, i: int, batch: int, s_q: int, s_kv: int, phase: Phase) -> Op:
    """The indexer's scores as an attention-like kernel: ``index_heads`` query heads over one
    cached key per token (no values), 2·index_head_dim FP8 FLOPs per query-key pair and head
    (head_dim index_head_dim / 2 in the attention model's 4·d), causal over a prompt. Priced
    unpaged even on a paged cache: with keys only and no softmax, its block loads do not wait on
    one another (DeepGEMM's paged MQA-logits kernel prefetches them by TMA)."""
    m = wl.model
    heads, d = m.index_heads, m.index_head_dim
    if wl.mode is Mode.DECODE and s_q > 1:     # speculative verification: the new queries share the keys
        heads, s_q = heads * s_q, 1
    causal = m.causal and wl.mode is not Mode.DECODE
    if causal and wl.parallelism.cp > 1 and s_q * wl.parallelism.cp == s_kv:
        causal, s_kv = False, s_kv // 2        # load-balanced context parallelism (mixers.attention_op)
    pairs = batch * s_q * s_kv * (0.5 if causal and s_q == s_kv else 1.0)
    key_bytes = m.index_key_bytes
    return Op(f"idx_logits.{i}", OpKind.ATTENTION, phase, i, 2.0 * heads * d * pairs, DType.FP8,
              input_bytes=batch * s_q * heads * (d + 4) + batch * s_kv * key_bytes,
              output_bytes=pairs * _SCORE_BYTES,
              shape=shape(batch=batch, heads=heads, kv_heads=1, seq_q=s_q, seq_kv=s_kv, head_dim=d / 2,
                          causal=float(causal), flash=1.0, kv_token_elems=key_bytes, scores_out=_SCORE_BYTES))


def sparse_attention_op(wl: Workload, i: int, batch: int, s_q: int, s_kv: int, phase: Phase, heads: int,
                        d: float, kv_token: float) -> Op:
    """Sparse MLA over a prompt or a training sequence: every query token attends, with all its
    ``heads`` sharing them, to the index_topk latents its indexer chose (fewer early in the
    sequence), as a decode step of one query per token does (FlashMLA's sparse prefill kernel runs
    a CTA per query token and head group, prefetching its gathered blocks as a dense-cache kernel
    does, so it is priced unpaged: no dependent per-block load latency). Shape keys gather_seqs and gather_from let the cost
    model count each sequence's cache once per wave of such CTAs in HBM (cost/attention.py)."""
    m, dt = wl.model, wl.dtype
    cp = wl.parallelism.cp
    # load-balanced context parallelism gives every rank early and late queries alike: the mean
    # query there sees the whole sequence's mean number of keys
    keys = selected_keys(s_kv if cp > 1 else s_q, s_kv, m.index_topk)
    queries = batch * s_q
    e = dt.bytes
    return Op(f"attn.{i}", OpKind.ATTENTION, phase, i, 4.0 * queries * heads * keys * d, dt,
              input_bytes=queries * heads * d * e + batch * s_kv * kv_token * e,
              output_bytes=queries * heads * d * e,
              shape=shape(batch=queries, heads=heads, kv_heads=1, seq_q=1, seq_kv=keys, head_dim=d,
                          causal=0.0, flash=1.0, kv_token_elems=float(kv_token), gather_seqs=float(batch), gather_from=float(s_kv)))
