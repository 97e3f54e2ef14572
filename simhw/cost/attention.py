"""Time of a FlashAttention kernel, CTA by CTA (prefill and split-KV decode; FlashAttention-2 and -3
dispatch); cost/roofline.py's op_cost calls it for attention ops. Dao, "FlashAttention-2", 2023;
Shah et al., "FlashAttention-3", 2024."""
from __future__ import annotations

import math

from ..spec.model import AttentionKernel, DeviceSpec
from ..workload.graph import Op, Phase
from .ctas import dispatch, overlap, schedule, split_heuristic

_REF_HEAD_DIM = 128.0     # the head_dim the attention fractions describe (Llama-class models)
_DENSE_DECODE_CTAS_PER_SM = 2   # PyTorch SDPA's FlashAttention-2 decode kernels (attention_time_s)


def attention_time_s(op: Op, hw: DeviceSpec) -> tuple[float, float, float]:
    """(time, compute-limited part, memory-limited part) of a FlashAttention kernel, launch excluded.

    Dao, "FlashAttention-2" (2023) §3: CTAs of attention_tile_q query rows of one head walk the
    keys in blocks of attention_tile_kv (causal: only up to the diagonal). One CTA takes
    attention_cta_overhead + loading Q and storing O + the longest of its tensor-core work
    (4·rows·block·head_dim FLOPs per block at its SM's share of peak x attention_compute_fraction),
    its K/V bytes through its SM's port to L2 (decode: plus attention_block_latency per block, the
    dependent K then V round trips nothing hides).
    Prefill: with a paged KV cache (shape key kv_write, serving engines) FlashAttention-2 runs its
    split-KV kernel (attention_split_tile_q x attention_split_tile_kv tiles) unsplit; without one
    it may split the keys when the CTAs would not fill the SMs. FlashAttention-2 hands out the
    q-blocks of each head in launch order, so causal grids finish on their longest CTAs (simulated
    block scheduler); FlashAttention-3's persistent scheduler takes the longest first and pays
    attention_cta_overhead once per SM rather than per tile (its producer warp loads the next
    tile under the current one).
    Decode (one query row per sequence) packs a GQA group into one CTA per (sequence, KV head) and
    splits the keys over CTAs when the SMs would idle (flash-decoding: FlashAttention-2's split
    heuristic on 64 x attention_split_tile_kv tiles, capped at attention_max_splits); such a CTA
    pays attention_first_block_latency once; split partials are combined by one more kernel
    (launch + one CTA's dependent loads + the FP32 partials). FlashAttention-2 copies q in and O
    back around the GQA swap when there are several sequences and KV heads (two small kernels).
    MHA decode (no group to swap into the query rows) runs the unsplit kernel, as the varlen path
    does. CTAs run attention_ctas_per_sm per SM (dense-cache decode: at least two). HBM carries Q
    and O once and K/V once per wave of CTAs that share them through L2, at
    attention_memory_fraction; the CTA schedule and the HBM
    time join as a p-norm (p = attention_overlap; large p = max). A KV-cache write (kv_write) adds
    one copy kernel. With a sliding window (shape key window) a causal q-block walks only the key
    blocks its rows see, and decode reads the last window keys. K and V take 2·head_dim elements
    per key token and KV head, or the shape's kv_token_elems when they share one cached vector
    (absorbed MLA decode: workload/mixers.py mla_ops); head_dim is then the mean of the
    QK^T and AV dims, which keeps the FLOPs exact. Backward (more FLOPs per op than the forward)
    scales the block work and bytes. DeepSeek sparse attention (workload/sparse_attention.py)
    prices its prompt attention as one-query rows gathering their keys (shape keys gather_seqs,
    gather_from) and its indexer as a kernel that writes FP32 scores (scores_out) for a top-k pass.
    """
    s = op.shape
    eff = hw.efficiency
    b, h, sq, skv, d = (float(s[k]) for k in ("batch", "heads", "seq_q", "seq_kv", "head_dim"))
    kvh = float(s.get("kv_heads", h)) or h
    causal = bool(s.get("causal", 0.0)) and sq > 1
    window = float(s.get("window", 0.0))     # sliding-window attention: keys within `window` of the query
    if window and sq == 1:
        skv = min(skv, window)
    if b <= 0 or h <= 0 or sq <= 0 or skv <= 0 or d <= 0:
        return 0.0, 0.0, 0.0
    e = op.dtype.bytes
    decode = sq == 1
    fa2 = eff.attention_kernel is AttentionKernel.FA2
    # a scoring kernel (the DSA indexer's logits: shape key scores_out, bytes per query-key score it
    # writes) has no softmax and no partial outputs to combine, so it splits the keys over every SM
    score_bytes = float(s.get("scores_out", 0.0))
    # FlashAttention-3's prefill kernel is persistent and warp-specialized (Shah et al. 2024 §3.1):
    # one CTA per SM loops over tiles, its producer warp loading the next tile while the consumers
    # finish this one, so the CTA set-up is paid once per SM, not per tile
    persistent = not fa2 and not decode
    # a paged KV cache (serving engines: shape key paged, or kv_write when the op also writes it)
    paged = bool(s.get("paged", 0.0) or s.get("kv_write", 0.0))
    units = max(hw.compute_units, 1)
    per_sm = max(eff.attention_ctas_per_sm, 1)
    if decode and not paged:
        # a dense cache decodes with PyTorch's FlashAttention-2 kernels (flash_fwd_splitkv_kernel,
        # hdim 128: 64 x 128 tiles, (64 + 2 x 128) x 128 x 2 B = 80 KB of shared memory), which
        # fit at least two CTAs per SM on sm80 and later, whatever kernel the spec's engine runs
        per_sm = max(per_sm, _DENSE_DECODE_CTAS_PER_SM)
    slots = units * per_sm
    p_cta = hw.peak(op.dtype) * eff.attention_compute_fraction / slots
    bw = hw.main_memory.bandwidth_bytes_per_s
    l2 = hw.memory_level("l2")
    l2_bw = (l2.bandwidth_bytes_per_s if l2 is not None else 2.5 * bw) * eff.l2_fraction
    sm_port = eff.sm_l2_bytes_per_cycle * hw.clock_hz if hw.clock_hz > 0 else l2_bw / units
    fwd_flops = 4.0 * b * h * sq * skv * d * (_causal_share(sq, skv) if causal else 1.0)
    work = max(1.0, op.flops / fwd_flops) if fwd_flops > 0 and op.flops > 0 else 1.0
    if decode:   # GQA group packed as the query rows of one CTA per (sequence, kv head)
        rows = min(float(eff.attention_tile_q), 16.0 * math.ceil(h / kvh / 16.0))
        # FlashAttention-2's varlen path (mha_varlen_fwd, paged serving caches) splits the keys only
        # when the GQA group is swapped into the query rows (seqlen_q == 1 and heads > kv_heads); MHA
        # decode there runs one CTA per sequence and head, with no combine. A dense cache (mha_fwd,
        # e.g. PyTorch SDPA) takes the split heuristic for MHA and GQA alike
        split_kernel = h > kvh or not paged
        bkv = eff.attention_split_tile_kv if split_kernel else eff.attention_tile_kv
        kv_blocks = math.ceil(skv / bkv)
        base = int(b * kvh)
        splits = split_heuristic(base, slots, kv_blocks, slots if score_bytes else eff.attention_max_splits) \
            if split_kernel else 1
        blocks_per_cta = math.ceil(kv_blocks / splits)
        lengths_blocks = [(blocks_per_cta, base * splits)]
    else:
        # a paged KV cache (serving engines; shape key paged or kv_write) runs FlashAttention-2's split-KV
        # kernel (flash_api.cpp: force_split_kernel = paged_KV) with its tiles, but unsplit: the
        # varlen path splits keys only for GQA decode. Unpaged (mha_fwd) prefill may split the keys
        # when the CTAs would not fill the SMs; the decision counts the split kernel's tiles.
        split_kernel = False
        split_tiles = paged and fa2
        append_rows: list[float] = []
        rows = float(eff.attention_split_tile_q if split_tiles else eff.attention_tile_q)
        bkv = eff.attention_split_tile_kv if split_tiles else eff.attention_tile_kv
        q_blocks = math.ceil(sq / rows)
        kv_blocks = math.ceil(skv / bkv)
        splits = 1
        if not split_tiles or s.get("kv_append", 0.0):
            # mha_fwd_kvcache (flash_attn_with_kvcache) takes the split heuristic on its split-KV tiles
            split_q = math.ceil(sq / max(eff.attention_split_tile_q, 1))
            split_kv = math.ceil(skv / eff.attention_split_tile_kv)
            splits = split_heuristic(int(b * h * split_q), slots, split_kv, eff.attention_max_splits)
        lengths_blocks = []
        offset = skv - sq
        for i in range(q_blocks):
            if causal:
                last = offset + min((i + 1) * rows, sq)
                n = math.ceil(min(skv, last) / bkv)
                if window:   # the block's first query row sees keys from row - window + 1 on
                    n -= math.floor(max(0.0, offset + i * rows - window + 1) / bkv)
            else:
                n = kv_blocks
            lengths_blocks.append((math.ceil(n / splits), int(b * h) * splits))
            # flash_attn_with_kvcache given the new k, v (shape key kv_append) appends them inside the
            # kernel: every CTA copies the new tokens of its key range into the cache before its main
            # loop, the same rows again for each q-block and each head of a GQA group
            # (flash_fwd_kernel.h compute_attn_1rowblock_splitkv, Append_KV)
            append_rows.append(min((i + 1) * rows, sq) if causal else sq)
    active = max(1, min(slots, sum(c for _, c in lengths_blocks)))
    share = max(1.0, min(float(per_sm), active / units))   # CTAs sharing one SM
    port = min(sm_port / share, l2_bw / active)             # one CTA's L2 -> SM bandwidth
    t_mma = work * 4.0 * rows * bkv * d * share / (p_cta * per_sm)
    exp_ref = eff.attention_exp_reference_per_clock or eff.attention_exp_per_clock
    if ((d != _REF_HEAD_DIM or exp_ref != eff.attention_exp_per_clock) and hw.clock_hz > 0
            and not score_bytes):   # (a scoring kernel has no softmax)
        # attention_compute_fraction is the kernel's rate at head_dim 128 on a chip running exp_ref
        # exponentials per clock and SM; of a block's time there, the softmax's exponentials (one
        # per score, on the SM's special-function units) do not scale with head_dim while the two
        # MMAs do (Shah et al. 2024 §3: H100 has 989 TFLOP/s of MMA but 3.9 TFLOP/s of
        # exponentials), and they scale with the special-function units' rate where this chip's
        # differs from exp_ref (Blackwell Ultra doubles it: hwspecs/gb300.yaml)
        t_ref = t_mma * _REF_HEAD_DIM / d
        # the MMA share of t_ref runs no faster than a GEMM's (compute_fraction of peak): where the
        # special-function units are slow beside the tensor cores (B200: 16 exponentials per clock
        # per SM for twice Hopper's MMA rate) the rest of t_ref is not all exponentials
        exp_cap = max(0.0, 1.0 - eff.attention_compute_fraction / max(eff.compute_fraction, 1e-9))
        t_exp_ref = min(work * rows * bkv * share / (exp_ref * hw.clock_hz), exp_cap * t_ref)
        t_mma = (t_ref - t_exp_ref) * d / _REF_HEAD_DIM + t_exp_ref * exp_ref / eff.attention_exp_per_clock
    if op.phase is Phase.BWD:   # the backward kernel (2.5x the forward's FLOPs) runs its tiles at a lower rate
        t_mma /= eff.attention_backward_fraction
    if fa2 and eff.sm_shared_bytes_per_cycle > 0 and hw.clock_hz > 0:
        # FlashAttention-2 splits a CTA's query rows over its warps, and every warp reads the whole
        # K and V tiles from shared memory for its MMAs (Dao 2023 §3.3): attention_warps x 2 x block x
        # head_dim x e bytes a block, against the tile's FLOPs. The 64-row split-KV kernel of paged
        # caches reads twice the bytes per FLOP of the 128-row kernel (16 rows per warp, not 32).
        # Tensor pipes and shared-memory reads stall one another as the CTA schedule and HBM do
        # (p-norm, attention_overlap)
        t_smem = (work * eff.attention_warps * 2.0 * bkv * d * e * share
                  / (eff.sm_shared_bytes_per_cycle * hw.clock_hz))
        t_mma = overlap((t_mma, t_smem), eff.attention_overlap)
    # K and V bytes per key token and KV head (shape key kv_token_elems: what the cache holds per
    # token when K and V share it, as MLA's latent does; else K and V of head_dim each)
    kv_tok = float(s.get("kv_token_elems", 2.0 * d)) * e
    # paged decode waits on each block's K, V loads; the dense kernel's cp.async prefetch of the next
    # block (FlashAttention-2 flash_fwd_kernel) hides all but the first
    lat = eff.attention_block_latency_s if decode and paged else 0.0
    first = eff.attention_first_block_latency_s if decode and split_kernel else 0.0
    q_rows = min(rows, sq * (h / kvh if decode else 1.0))
    t_qo = 2.0 * q_rows * d * e / port                    # load Q, store O
    merged: dict[float, int] = {}
    in_order: list[float] = []
    append = bool(s.get("kv_append", 0.0)) and not decode
    for j, (n, c) in enumerate(lengths_blocks):
        tokens = min(n * bkv, skv)
        stream = work * tokens * kv_tok / port
        if decode:   # nothing to overlap a block's dependent K, V loads with: latency + transfer per block
            stream += n * lat
        t = (0.0 if persistent else eff.attention_cta_overhead_s) + t_qo + first + max(n * t_mma, stream)
        if append:   # read the new K, V rows and write them into the cache, through the SM's L2 port
            t += append_rows[j] * 2.0 * kv_tok / port
        merged[t] = merged.get(t, 0) + c
        in_order.append(t)
    # HBM: Q and O once; K/V once per wave of CTAs that share them through L2 (the q-blocks of one
    # head, and the heads of one GQA group, run side by side)
    kv_unique = b * skv * kvh * kv_tok
    pool = float(s.get("gather_from", 0.0))
    if decode and pool:
        # sparse attention over a prompt (workload/sparse_attention.py): the b query rows are the
        # tokens of gather_seqs sequences, each gathering its own skv top keys from its sequence's
        # cache of `pool` tokens. A wave of CTAs holds consecutive query tokens, taken to choose
        # mostly the same keys (UNVERIFIED: no published overlap figure), which it shares through
        # L2: HBM carries each sequence's selection once per wave, the SM ports every CTA's own
        seqs = max(1.0, float(s.get("gather_seqs", b)))
        waves = math.ceil(b / seqs / slots)
        kv_unique = seqs * waves * min(skv, pool) * kvh * kv_tok
    if decode:
        hbm = 2.0 * b * h * d * e + kv_unique
    else:
        rereads = max(1.0, math.ceil(sq / rows) / slots) * (_causal_share(sq, skv) if causal else 1.0)
        hbm = 2.0 * b * sq * h * d * e + kv_unique * max(rereads, 1.0)
    hbm *= work
    pairs = b * sq * skv * (_causal_share(sq, skv) if causal else 1.0)
    if score_bytes:   # a scoring kernel (the DSA indexer's) writes a score per query-key pair
        hbm += pairs * score_bytes
    if causal and fa2 and work <= 1.0 and len(in_order) > 1:
        # FlashAttention-2's forward launches grid (q-block, batch, head): the block scheduler hands
        # out the q-blocks of each head in ascending order, the shortest causal rows first (its
        # backward walks key blocks, longest first, which the longest-first schedule below covers)
        sched = dispatch(in_order, lengths_blocks[0][1], slots)
    else:
        sched = schedule(list(merged.items()), slots)
    if persistent:   # one set-up per SM, paid once before its first tile
        sched += eff.attention_cta_overhead_s
    t_hbm = hbm / (bw * eff.attention_memory_fraction)
    # paged kernels stall on their dependent block loads; a dense cache streams with prefetch, its
    # L2 -> SM and HBM transfers fully overlapped
    body = overlap((sched, t_hbm), eff.attention_overlap if paged else math.inf)
    compute = sum(n * t_mma * c for n, c in lengths_blocks) / slots
    if s.get("kv_write", 0.0):   # serving engines first copy the new K/V into the paged cache
        body += eff.launch_s + kv_write_s(b * sq, kvh, d, kv_tok, hw)
    if decode and split_kernel and fa2 and b > 1 and kvh > 1:
        # the GQA swap views q as (batch x group, kv_heads, head_dim): with more than one sequence
        # and more than one KV head that view is strided, so q is copied in and O copied back
        # (flash_api.cpp mha_varlen_fwd: reshape after transpose) -- two more small kernels;
        # mha_fwd_kvcache (kv_append) hands the kernel q's strided view and allocates O with the
        # same strides (empty_like), so its transpose back is a view: no copies
        copies = 0.0 if s.get("kv_append", 0.0) else 2.0
        body += copies * (eff.launch_s + 2.0 * b * h * d * e / (bw * eff.elementwise_memory_fraction))
    if splits > 1 and not score_bytes:   # combine kernel: read FP32 partial outputs and log-sum-exps, write O
        part = b * h * sq * splits * (d + 1) * 4.0 + b * h * sq * d * e
        body += eff.launch_s + eff.attention_cta_overhead_s + part / (bw * eff.attention_memory_fraction)
    if score_bytes:   # ... which a top-k selection kernel then reads
        body += selection_pass_s(pairs * score_bytes, hw)
    body += eff.attention_overhead_s
    return body, compute, t_hbm


def kv_write_s(tokens: float, kv_heads: float, head_dim: float, kv_token_bytes: float, hw: DeviceSpec) -> float:
    """Seconds (launch excluded) of a serving engine's KV-cache write of ``tokens`` new tokens: the
    slower of its bytes (each token's K and V read and written, ``kv_token_bytes`` per KV head, at
    the elementwise stream rate) and its instructions. vLLM's reshape_and_cache_flash launches one
    block per token of min(kv_heads x head_dim, 512) threads (csrc/cache_kernels.cu, P), and each
    thread issues attention_kv_write_instructions (its slot lookup, 64-bit divisions into block and
    offset, index arithmetic, its loads and stores) at issue_lanes_per_clock per SM, so few KV heads
    per GPU write at the rate of their threads, not of their bytes: aiconfigurator's A100 prefills
    with 1-4 KV heads take about 50 us more per KV head at 16384 tokens, and little more beyond
    four, where the blocks stop growing."""
    eff = hw.efficiency
    t_bytes = 2.0 * tokens * kv_heads * kv_token_bytes / (hw.main_memory.bandwidth_bytes_per_s * eff.elementwise_memory_fraction)
    if eff.attention_kv_write_instructions <= 0 or hw.clock_hz <= 0:
        return t_bytes
    threads = tokens * min(kv_heads * head_dim, 512.0)
    issue = max(hw.compute_units, 1) * eff.issue_lanes_per_clock * hw.clock_hz
    return max(t_bytes, threads * eff.attention_kv_write_instructions / issue)


def selection_pass_s(score_bytes: float, hw: DeviceSpec) -> float:
    """The top-k pass after a scoring kernel: one launch and one read of its ``score_bytes`` of
    scores from HBM at the elementwise stream rate."""
    eff = hw.efficiency
    return eff.launch_s + score_bytes / (hw.main_memory.bandwidth_bytes_per_s * eff.elementwise_memory_fraction)


def _causal_share(sq: float, skv: float) -> float:
    """Share of the sq x skv score matrix a causal kernel computes (the queries are the last sq)."""
    sq = min(sq, skv)
    return (sq * (skv - sq) + sq * (sq + 1) / 2) / (sq * skv)
