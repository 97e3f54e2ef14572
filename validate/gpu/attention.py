"""Scaled-dot-product attention: causal prefill and decode (one query per sequence, full KV)."""
from __future__ import annotations

PREFILL = ((1, 512), (1, 2048), (1, 8192), (4, 2048), (16, 1024), (64, 256))   # (batch, seq)
DECODE = ((1, 4096), (8, 4096), (32, 2048), (64, 8192), (128, 1024), (256, 512))  # (batch, kv length)
HEADS = ((32, 32), (32, 8), (64, 8))                                            # (heads, kv heads)


SMOKE = (((1, 128),), ((2, 256),), ((4, 4), (4, 2)), 64)   # prefill, decode, heads, head_dim


def measure(dtype: str = "bf16", head_dim: int = 128, quick: bool = False, gpu: str = "", device: str = "cuda",
            smoke: bool = False) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import held_s, input_sets, kernel_names, time_kernel, torch_dtype

    dt = torch_dtype(dtype)
    rows = []
    prefill, decode, heads_list = PREFILL, DECODE, HEADS
    if quick:
        prefill, decode, heads_list = PREFILL[:3], DECODE[:3], HEADS[:1]
    if smoke:
        prefill, decode, heads_list, head_dim = SMOKE
    timing = dict(warmup=1, reps=2, trials=2, device=device) if smoke else dict(device=device)
    size = torch.empty((), dtype=dt).element_size()

    def timed(b, h, kvh, sq, skv, causal):
        sets = input_sets(b * (2 * h * sq + 2 * kvh * skv) * head_dim * size, device)
        qkv = [(torch.randn(b, h, sq, head_dim, device=device, dtype=dt),
                torch.randn(b, kvh, skv, head_dim, device=device, dtype=dt),
                torch.randn(b, kvh, skv, head_dim, device=device, dtype=dt)) for _ in range(sets)]
        try:
            fns = [lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                                        enable_gqa=(h != kvh)) for q, k, v in qkv]
            fns[0]()
        except (RuntimeError, TypeError):      # old torch without enable_gqa: repeat K/V heads
            qkv = [(q, k.repeat_interleave(h // kvh, 1), v.repeat_interleave(h // kvh, 1)) for q, k, v in qkv]
            fns = [lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=causal) for q, k, v in qkv]
        return time_kernel(fns, **timing), kernel_names(fns[0], device)

    for h, kvh in heads_list:
        for b, s in prefill:
            t, kernels = timed(b, h, kvh, s, s, True)
            rows.append(dict(kind="attention", measured_s=t, batch=b, seq_q=s, seq_kv=s, heads=h, kv_heads=kvh,
                             head_dim=head_dim, causal="true", dtype=dtype, timing="kernel", source="simhw-gpu",
                             label=f"sdpa prefill b={b} s={s} h={h}/{kvh}", gpu=gpu, kernels=kernels,
                             held_s=held_s(t)))
        for b, s in decode:
            t, kernels = timed(b, h, kvh, 1, s, False)
            rows.append(dict(kind="attention", measured_s=t, batch=b, seq_q=1, seq_kv=s, heads=h, kv_heads=kvh,
                             head_dim=head_dim, causal="false", dtype=dtype, timing="kernel", source="simhw-gpu",
                             label=f"sdpa decode b={b} kv={s} h={h}/{kvh}", gpu=gpu, kernels=kernels,
                             held_s=held_s(t)))
    return rows
