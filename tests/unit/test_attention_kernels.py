"""FlashAttention kernel structure in cost/roofline.py: launch-order dispatch of causal grids,
the varlen GQA-swap copies, paged prefill tiles, and the spec's attention_kernel choice."""
from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

import simhw
from simhw.cost.ctas import dispatch, schedule
from simhw.cost.attention import attention_time_s
from simhw.errors import SpecError
from simhw.spec.model import AttentionKernel, DType
from simhw.workload.graph import Op, OpKind, Phase, shape

A100 = simhw.load_hw("a100")


def _fa(hw, kernel: AttentionKernel):
    return dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, attention_kernel=kernel))


# the A100 without FlashAttention-2's shared-memory operand term (FA3 kernels have none): for tests
# that isolate another difference between the two kernels
A100_TENSOR_ONLY = dataclasses.replace(A100, efficiency=dataclasses.replace(A100.efficiency,
                                                                            sm_shared_bytes_per_cycle=0.0))


def _attn(b, h, kvh, sq, skv, causal=False, kv_write=False):
    flops = 4.0 * b * h * sq * skv * 128 * (0.5 if causal else 1.0)
    return Op("a", OpKind.ATTENTION, Phase.FWD, 0, flops, DType.BF16,
              shape=shape(batch=b, heads=h, kv_heads=kvh, seq_q=sq, seq_kv=skv, head_dim=128,
                          causal=1.0 if causal else 0.0, flash=1.0, kv_write=1.0 if kv_write else 0.0))


def _brute_dispatch(durations, repeats, slots):
    free = [0.0] * slots
    for t in itertools.chain.from_iterable(itertools.repeat(durations, repeats)):
        i = min(range(slots), key=lambda j: free[j])
        free[i] += t
    return max(free)


@pytest.mark.parametrize("seed", range(20))
def test_dispatch_is_greedy_list_scheduling_in_launch_order(seed):
    rnd = random.Random(seed)
    durations = [rnd.uniform(0.1, 5.0) for _ in range(rnd.randint(1, 12))]
    repeats, slots = rnd.randint(1, 6), rnd.randint(1, 9)
    assert dispatch(durations, repeats, slots) == pytest.approx(_brute_dispatch(durations, repeats, slots))


def test_shortest_first_dispatch_is_never_better_than_longest_first():
    durations = [float(i + 1) for i in range(16)]          # causal q-blocks: 1, 2, ..., 16 key blocks
    ascending = dispatch(durations, 3, 10)
    longest_first = schedule([(t, 3) for t in durations], 10)
    assert ascending >= longest_first
    assert ascending > sum(durations) * 3 / 10              # the long CTAs come last and set the tail


def test_fa2_causal_prefill_with_few_heads_is_slower_than_fa3_scheduling():
    op = _attn(1, 2, 2, 16384, 16384, causal=True)      # unpaged: same tiles, no split either way
    fa2 = attention_time_s(op, A100)[0]
    fa3 = attention_time_s(op, _fa(A100, AttentionKernel.FA3))[0]
    assert fa2 > 1.05 * fa3


def test_gqa_swap_copies_need_several_sequences_and_kv_heads():
    """FlashAttention-2 copies q and O around the GQA swap only when the (batch x group) view is
    strided: more than one sequence and more than one KV head."""
    two_kernels = 2 * A100.efficiency.launch_s

    def extra(b, h, kvh):
        op = _attn(b, h, kvh, 1, 16, kv_write=True)
        return (attention_time_s(op, A100_TENSOR_ONLY)[0]
                - attention_time_s(op, _fa(A100_TENSOR_ONLY, AttentionKernel.FA3))[0])

    assert extra(1, 32, 8) == pytest.approx(0.0, abs=1e-9)      # one sequence: a view
    assert extra(16, 8, 1) == pytest.approx(0.0, abs=1e-9)      # one KV head: a view
    assert extra(2, 32, 8) >= two_kernels                       # copy in, copy back
    assert extra(2, 32, 32) == pytest.approx(0.0, abs=1e-9)     # MHA: no swap


def test_paged_prefill_uses_the_split_kernel_tiles():
    """64-row tiles: twice the CTAs of the 128-row forward kernel, so a different time."""
    paged = attention_time_s(_attn(4, 8, 8, 2048, 2048, causal=True, kv_write=True), A100)[0]
    plain = attention_time_s(_attn(4, 8, 8, 2048, 2048, causal=True), A100)[0]
    assert paged != pytest.approx(plain, rel=1e-3)


def test_hopper_specs_run_flashattention_3_and_a100_flashattention_2():
    assert A100.efficiency.attention_kernel is AttentionKernel.FA2
    for name in ("h100", "h200", "b200", "h100-pcie"):
        assert simhw.load_hw(name).efficiency.attention_kernel is AttentionKernel.FA3


def test_bad_attention_kernel_names_the_key_and_choices(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: a100\nname: bad-gpu\nefficiency:\n  attention_kernel: fa9\n")
    with pytest.raises(SpecError, match=r"efficiency\.attention_kernel: 'fa9' is not one of fa2, fa3") as err:
        simhw.load_hw(str(path))
    assert "bad.yaml" in str(err.value)


def test_backward_attention_keeps_the_longest_first_schedule():
    """FlashAttention-2's backward walks key blocks, longest first: the launch-order penalty of the
    forward does not apply, so FA2 and FA3 scheduling give the same backward time."""
    fwd = _attn(1, 2, 2, 16384, 16384, causal=True)
    bwd = dataclasses.replace(fwd, flops=2.5 * fwd.flops)
    fa2, fa3 = A100_TENSOR_ONLY, _fa(A100_TENSOR_ONLY, AttentionKernel.FA3)
    assert attention_time_s(bwd, fa2)[0] == pytest.approx(attention_time_s(bwd, fa3)[0])


def test_dense_decode_streams_the_cache_paged_decode_waits_on_each_block():
    """A dense KV cache (PyTorch SDPA: mha_fwd) splits the keys for MHA decode too and prefetches the
    next K/V block, so a long-context, one-sequence decode streams its cache near the HBM read rate;
    the paged serving kernel (shape key paged) keeps one CTA per head and pays each block's latency."""
    h100 = simhw.load_hw("h100")
    dense = _attn(1, 32, 32, 1, 4096)
    paged = Op("attn", OpKind.ATTENTION, Phase.FWD, 0, dense.flops, DType.BF16,
               shape=shape(**dict(dense.shape), paged=1.0), input_bytes=dense.input_bytes,
               output_bytes=dense.output_bytes)
    t_dense, t_paged = attention_time_s(dense, h100)[0], attention_time_s(paged, h100)[0]
    assert t_dense < 0.7 * t_paged
    kv_bytes = 2 * 4096 * 32 * 128 * 2
    assert 0.5 < kv_bytes / t_dense / h100.main_memory.bandwidth_bytes_per_s <= h100.efficiency.attention_memory_fraction


def test_serving_workloads_mark_their_attention_paged_and_training_dense():
    from simhw.workload.from_yaml import workload_from_dict
    from simhw.workload.spec import Mode
    from simhw.workload.transformer import build_graph
    for mode, paged in (("decode", 1.0), ("prefill", 1.0), ("train", 0.0)):
        raw = {"model": "llama2-7b", "mode": mode, "dtype": "bf16", "seq_len": 512, "micro_batch": 1,
               "global_batch": 1, "devices": 1}
        if mode == "decode":
            raw.update(seq_len=513, decode={"context_len": 512, "new_tokens": 1}, engine="none")
        wl = workload_from_dict(raw)
        assert wl.mode is Mode(mode)
        attn = [op for op in build_graph(wl).ops if op.kind is OpKind.ATTENTION]
        assert attn and all(op.shape["paged"] == paged for op in attn)


def test_fa3_prefill_pays_the_cta_setup_once_per_sm_and_fa2_once_per_tile():
    """FlashAttention-3's persistent prefill kernel loads the next tile under the current one:
    a larger attention_cta_overhead adds itself once; FlashAttention-2 adds it per wave of tiles.
    Decode is unchanged between the two (split-KV kernels are not persistent)."""
    h100 = simhw.load_hw("h100")
    many = _attn(64, 32, 8, 256, 256, causal=True)     # 4096 tiles over 132 SMs
    decode = _attn(32, 32, 8, 1, 2048)

    def extra(kernel, op, dt=1e-6):
        hw = _fa(h100, kernel)
        slower = dataclasses.replace(hw, efficiency=dataclasses.replace(
            hw.efficiency, attention_cta_overhead_s=hw.efficiency.attention_cta_overhead_s + dt))
        return attention_time_s(op, slower)[0] - attention_time_s(op, hw)[0]

    assert extra(AttentionKernel.FA3, many) == pytest.approx(1e-6, rel=1e-6)
    assert extra(AttentionKernel.FA2, many) > 20e-6
    assert extra(AttentionKernel.FA3, decode) == pytest.approx(extra(AttentionKernel.FA2, decode), rel=1e-9)


def _long_prefill(d):
    h, b, s = 2048 // d, 2, 16384
    return Op("a", OpKind.ATTENTION, Phase.FWD, 0, 4.0 * b * h * s * s * d, DType.BF16,
              shape=shape(batch=b, heads=h, kv_heads=h, seq_q=s, seq_kv=s, head_dim=d, causal=0.0, flash=1.0))


def test_head_dim_scales_the_mma_but_not_the_exponentials():
    """The spec's attention fractions describe head_dim 128; the softmax's exponentials (one per
    score, on the special-function units) do not shrink with head_dim. FlashAttention-3 on H100
    (Shah et al. 2024, Fig. 5, forward, 16k, non-causal): hdim 64 / 128 / 256 at about 497 / 650 /
    756 TFLOP/s, ratios 0.76 and 1.16."""
    h100 = simhw.load_hw("h100")
    rate = {d: _long_prefill(d).flops / attention_time_s(_long_prefill(d), h100)[0] for d in (64, 128, 256)}
    assert rate[64] / rate[128] == pytest.approx(0.76, abs=0.04)
    assert rate[256] / rate[128] == pytest.approx(1.16, abs=0.05)
    # a chip whose fraction was measured at its own (halved) exponential rate keeps head_dim 128's time
    own = dataclasses.replace(h100, efficiency=dataclasses.replace(
        h100.efficiency, attention_exp_per_clock=8.0, attention_exp_reference_per_clock=8.0))
    assert attention_time_s(_long_prefill(128), own) == attention_time_s(_long_prefill(128), h100)
    assert attention_time_s(_long_prefill(64), own)[0] > attention_time_s(_long_prefill(64), h100)[0]


def test_the_exponential_rate_is_a_what_if_at_every_head_dim():
    """attention_compute_fraction describes a chip with attention_exp_reference_per_clock (16 on
    NVIDIA's sm80-sm100 SMs); another exponential rate scales the softmax's share of the kernel
    time, at head_dim 128 too, and no further than that share (1 - attention / GEMM fraction).
    Blackwell Ultra (gb300.yaml: 32 per clock, the GB200's fraction) runs the forward faster."""
    h100 = simhw.load_hw("h100")
    eff = h100.efficiency
    base = attention_time_s(_long_prefill(128), h100)[0]
    share = 1.0 - eff.attention_compute_fraction / eff.compute_fraction
    for rate in (8.0, 32.0, 1e9):
        what_if = dataclasses.replace(h100, efficiency=dataclasses.replace(eff, attention_exp_per_clock=rate))
        t = attention_time_s(_long_prefill(128), what_if)[0]
        assert (t > base) if rate < 16 else (t < base)
        assert t >= base * (1.0 - share) * 0.999
    gb200, gb300 = simhw.load_hw("gb200"), simhw.load_hw("gb300")
    assert gb300.efficiency.attention_exp_per_clock == 2 * gb300.efficiency.attention_exp_reference_per_clock
    t200, t300 = (attention_time_s(_long_prefill(128), hw)[0] for hw in (gb200, gb300))
    gb_share = 1.0 - gb200.efficiency.attention_compute_fraction / gb200.efficiency.compute_fraction
    assert t200 * (1.0 - gb_share / 2) * 0.999 <= t300 < t200


def test_dense_cache_decode_runs_at_least_two_ctas_per_sm():
    """PyTorch SDPA decodes a dense cache with FlashAttention-2 kernels (two CTAs per SM fit),
    whatever the spec's serving kernel is; a paged cache keeps the spec's one CTA per SM (FA3)."""
    h200 = simhw.load_hw("h200")
    two = dataclasses.replace(h200, efficiency=dataclasses.replace(h200.efficiency, attention_ctas_per_sm=2))
    dense = _attn(256, 32, 32, 1, 512)
    paged = Op("a", OpKind.ATTENTION, Phase.FWD, 0, dense.flops, DType.BF16, shape={**dense.shape, "paged": 1.0})
    assert h200.efficiency.attention_ctas_per_sm == 1
    assert attention_time_s(dense, h200) == attention_time_s(dense, two)
    assert attention_time_s(paged, h200)[0] > attention_time_s(paged, two)[0]


def test_flashattention_2_warps_read_k_and_v_from_shared_memory():
    """Every warp of a FlashAttention-2 CTA reads the K and V tiles from shared memory: the 64-row
    split-KV kernel of paged caches (16 rows per warp) spends twice the shared-memory bytes per FLOP
    of the 128-row kernel, so switching the term on slows a paged prefill more than a dense one."""
    eff = A100.efficiency
    assert eff.sm_shared_bytes_per_cycle == 128 and eff.attention_warps == 4
    for kv_write in (False, True):
        op = _attn(4, 32, 8, 4096, 4096, causal=True, kv_write=kv_write)
        with_smem, without = attention_time_s(op, A100)[0], attention_time_s(op, A100_TENSOR_ONLY)[0]
        assert with_smem > without
        if kv_write:
            paged_ratio = with_smem / without
        else:
            dense_ratio = with_smem / without
    assert paged_ratio > dense_ratio > 1.0
    fa3 = _fa(A100, AttentionKernel.FA3)        # wgmma reads its operands itself: no such term
    op = _attn(4, 32, 8, 4096, 4096, causal=True)
    assert attention_time_s(op, fa3)[0] == attention_time_s(op, _fa(A100_TENSOR_ONLY, AttentionKernel.FA3))[0]


def test_a_paged_cache_alone_selects_the_split_kernel_and_rows_can_say_so():
    """flash_api.cpp forces the split-KV kernel whenever the KV cache is paged (a block table), with
    or without an in-kernel append: the measurement column `paged` says so (vidur's sarathi rows)."""
    from simhw.validation.schema import parse_lines

    text = ("kind,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,paged,kv_cache_write,dtype,measured_s\n"
            "attention,1,2048,4096,32,4,128,true,true,,fp16,1\n"
            "attention,1,2048,4096,32,4,128,true,,,fp16,1\n"
            "attention,1,2048,4096,32,4,128,true,,true,fp16,1\n")
    rows, bad = parse_lines(text.splitlines(), "a.csv")
    assert not bad
    paged, dense, written = (attention_time_s(r.op, A100)[0] for r in rows)
    assert rows[0].op.shape["paged"] == 1.0 and rows[1].op.shape["paged"] == 0.0
    assert paged != pytest.approx(dense, rel=1e-3)          # 64-row split tiles, not 128-row ones
    assert written > paged                                   # plus the serving engine's copy kernel


def test_vidur_attention_rows_are_paged(tmp_path):
    """vidur's sarathi kernel (flash_attn_with_kvcache on a 16-token block table) reads a paged cache."""
    from simhw.validation import convert_vidur

    folder = tmp_path / "a100" / "compute_legacy"
    folder.mkdir(parents=True)
    (folder / "attention_subset.csv").write_text(
        "n_embd,n_q_head,n_kv_head,num_tensor_parallel_workers,is_prefill,batch_size,kv_cache_size,"
        "prefill_chunk_size,time_stats.attn_prefill.median,time_stats.attn_decode.median\n"
        "8192,64,8,2,True,1,512,512,0.2,\n8192,64,8,2,False,8,2048,0,,0.05\n")
    df = convert_vidur(tmp_path, send_recv=False)
    assert list(df.kind) == ["attention", "attention"] and list(df.paged) == ["true", "true"]


def test_kv_cache_write_with_few_kv_heads_runs_at_its_threads_rate():
    """cost/attention.py kv_write_s: vLLM's cache write runs one block per token of
    min(kv_heads x head_dim, 512) threads, each issuing attention_kv_write_instructions; with few KV
    heads that, not the bytes, sets its time (up to four heads of 128 it grows with the heads at a
    fixed token count, beyond four only the bytes grow); with no instruction count, bytes only."""
    from simhw.cost.attention import kv_write_s

    eff = A100.efficiency
    issue = A100.compute_units * eff.issue_lanes_per_clock * A100.clock_hz
    assert eff.issue_lanes_per_clock == 128
    tokens = 16384
    for kvh in (1, 2, 4):
        threads = tokens * kvh * 128
        assert kv_write_s(tokens, kvh, 128, 512, A100) == pytest.approx(threads * eff.attention_kv_write_instructions / issue)
    # eight heads: the block is still 512 threads, and its bytes take less than its instructions
    assert kv_write_s(tokens, 8, 128, 512, A100) == pytest.approx(kv_write_s(tokens, 4, 128, 512, A100))
    bytes_only = 2 * tokens * 64 * 512 / (A100.main_memory.bandwidth_bytes_per_s * eff.elementwise_memory_fraction)
    assert kv_write_s(tokens, 64, 128, 512, A100) == pytest.approx(bytes_only)      # many heads: the bytes
    plain = dataclasses.replace(A100, efficiency=dataclasses.replace(eff, attention_kv_write_instructions=0.0))
    assert kv_write_s(tokens, 1, 128, 512, plain) == pytest.approx(bytes_only / 64)
    # inside the attention op: the 4-KV-head prefill of many short sequences pays it
    with_write = attention_time_s(_attn(128, 4, 4, 128, 128, causal=True, kv_write=True), A100)[0]
    with_plain = attention_time_s(_attn(128, 4, 4, 128, 128, causal=True, kv_write=True), plain)[0]
    assert with_write - with_plain == pytest.approx(kv_write_s(tokens, 4, 128, 512, A100)
                                                    - kv_write_s(tokens, 4, 128, 512, plain))
