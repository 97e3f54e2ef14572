"""KV cache (KVQuant, seed-targets §11), logits and loss buffers (CCE, §10), Kinetics eFLOPs (§3)."""
import pytest

import simhw
from simhw.cost.kinetics import intensity_elements, kinetics_dense_cost
from simhw.cost.memory import kv_cache_bytes_per_token, logits_bytes
from simhw.workload.builtins import builtin_model

from tests.helpers import wl


def test_llama7b_kv_cache_is_512_kib_per_token_fp16():
    """§11: 2 (K,V) x 32 layers x 4096 x 2 B = 524,288 B per token."""
    w = wl(model="llama2-7b", mode="decode", dtype="fp16", devices=1, global_batch=1)
    assert kv_cache_bytes_per_token(w) == 524288


def test_llama7b_1m_tokens_is_488_gib():
    """§11 [D]: 1e6 tokens x 512 KiB = 524 GB = 488 GiB (the KVQuant repo rounds to '490 GB')."""
    w = wl(model="llama2-7b", mode="decode", seq_len=1_000_000, dtype="fp16", devices=1, global_batch=1,
           micro_batch=1, decode={"context_len": 1_000_000, "new_tokens": 1})
    mem = simhw.memory_breakdown(w)
    assert mem.kv_cache_bytes / 2**30 == pytest.approx(488.3, abs=0.5)


def test_kv_bits_include_scales_and_outliers():
    """3-bit KV with 128-element groups (fp16 scale + zero) and 1% fp16 outliers (KVQuant §3)."""
    w = wl(model="llama2-7b", mode="decode", dtype="fp16", devices=1, global_batch=1,
           memory={"kv_bits": 3, "kv_outlier_fraction": 0.01})
    bits = (3 + 32 / 128) * 0.99 + 0.01 * 48
    assert kv_cache_bytes_per_token(w) == pytest.approx(2 * 32 * 4096 * bits / 8)
    assert kv_cache_bytes_per_token(w) < 524288 / 4


def test_gemma2_standard_loss_buffers_grow_with_tokens_times_vocab():
    """§10: Gemma 2 2B, |V| = 256000, N = 8192 tokens: the loss needs about 24 GB and the
    classifier head about 28 GB with standard cross-entropy (fp32 upcast, log-softmax, gradient)."""
    small = wl(model="gemma2-2b", seq_len=2048, micro_batch=4, global_batch=4, devices=1, memory={"loss": "standard"})
    big = wl(model="gemma2-2b", seq_len=4096, micro_batch=4, global_batch=4, devices=1, memory={"loss": "standard"})
    n_v = 8192 * 256000
    assert logits_bytes(small) == pytest.approx(n_v * 14)
    assert logits_bytes(big) == pytest.approx(2 * logits_bytes(small))
    assert logits_bytes(small) / 2**30 == pytest.approx(27.4, abs=1.0)     # ~28 GB (head + loss)
    assert (logits_bytes(small) - 2 * n_v) / 2**30 == pytest.approx(23.4, abs=1.0)  # ~24 GB (loss)
    cce = wl(model="gemma2-2b", seq_len=2048, micro_batch=4, global_batch=4, devices=1, memory={"loss": "cce"})
    assert logits_bytes(cce) < 1e6                                          # "24 GB to 1 MB"
    # Megatron's fused loss (the fused framework's default) keeps the bf16 logits only
    fused = wl(model="gemma2-2b", seq_len=2048, micro_batch=4, global_batch=4, devices=1)
    assert logits_bytes(fused) == pytest.approx(n_v * 2)


def test_kinetics_intensity_of_b200_is_562_5():
    """§3d: 2.25 PFLOP/s / (8 TB/s / 2 B) = 562.5 FLOP per element on B200."""
    b200 = simhw.load_hw("b200")
    assert intensity_elements(b200) == pytest.approx(562.5, rel=0.01)


@pytest.mark.parametrize("name,ratio", [("qwen3-8b", 54), ("qwen3-0.6b", 204), ("qwen3-32b", 25)])
def test_kinetics_dense_memory_dominates(name, ratio):
    """§3f: L_in = 1000, L_out = 32768, N = 1: memory/compute eFLOPs = 54x, 204x, 25x."""
    m = builtin_model(name)
    params = {"qwen3-8b": 8.19e9, "qwen3-0.6b": 0.752e9, "qwen3-32b": 32.76e9}[name]
    compute, memory = kinetics_dense_cost(params, 1000, 32768, 1, m.heads, m.kv_heads, m.head_dim, m.layers)
    assert memory / compute == pytest.approx(ratio, rel=0.03)
    if name == "qwen3-8b":
        assert compute == pytest.approx(8.73e14, rel=0.005)
        assert memory == pytest.approx(4.73e16, rel=0.005)


def test_memo_7b_skeletal_activations_are_4_tib():
    """MEMO §2b: 16·s·h·L elements of skeletal activations for 7B at s = 1M: 4096 'GB' = 4 TiB.
    Without dropout masks, Korthikanti's breakdown is 16 elements per token per hidden unit too
    (two norm inputs, QKV and FFN inputs, Q, K, V, projection input, 4h GeLU input, 4h second-linear
    input), matching MEMO Fig. 4's count."""
    from dataclasses import replace

    from simhw.cost.memory import activation_bytes_per_layer
    w = wl(model="memo-7b", seq_len=1 << 20, global_batch=1, micro_batch=1, devices=1)
    w = replace(w, model=replace(w.model, dropout=False))
    per_layer = activation_bytes_per_layer(w)
    assert per_layer == 16 * (1 << 20) * 4096 * 2
    assert per_layer * 32 / 2**40 == pytest.approx(4.0, rel=1e-12)
