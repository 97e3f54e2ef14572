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

    from common import time_kernel, torch_dtype

    dt = torch_dtype(dtype)
    rows = []
    prefill, decode, heads_list = PREFILL, DECODE, HEADS
    if quick:
        prefill, decode, heads_list = PREFILL[:3], DECODE[:3], HEADS[:1]
    if smoke:
        prefill, decode, heads_list, head_dim = SMOKE
    timing = dict(warmup=1, reps=2, trials=2, device=device) if smoke else dict(device=device)
    for h, kvh in heads_list:
        for b, s in prefill:
            q = torch.randn(b, h, s, head_dim, device=device, dtype=dt)
            k = torch.randn(b, kvh, s, head_dim, device=device, dtype=dt)
            v = torch.randn_like(k)
            fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=(h != kvh))
            try:
                t = time_kernel(fn, **timing)
            except (RuntimeError, TypeError):   # old torch without enable_gqa: repeat K/V heads
                k2, v2 = k.repeat_interleave(h // kvh, 1), v.repeat_interleave(h // kvh, 1)
                t = time_kernel(lambda: F.scaled_dot_product_attention(q, k2, v2, is_causal=True), **timing)
            rows.append(dict(kind="attention", measured_s=t, batch=b, seq_q=s, seq_kv=s, heads=h, kv_heads=kvh,
                             head_dim=head_dim, causal="true", dtype=dtype, timing="kernel", source="simhw-gpu",
                             label=f"sdpa prefill b={b} s={s} h={h}/{kvh}", gpu=gpu))
            del q, k, v
        for b, s in decode:
            q = torch.randn(b, h, 1, head_dim, device=device, dtype=dt)
            k = torch.randn(b, kvh, s, head_dim, device=device, dtype=dt)
            v = torch.randn_like(k)
            try:
                t = time_kernel(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=(h != kvh)), **timing)
            except (RuntimeError, TypeError):
                k2, v2 = k.repeat_interleave(h // kvh, 1), v.repeat_interleave(h // kvh, 1)
                t = time_kernel(lambda: F.scaled_dot_product_attention(q, k2, v2), **timing)
            rows.append(dict(kind="attention", measured_s=t, batch=b, seq_q=1, seq_kv=s, heads=h, kv_heads=kvh,
                             head_dim=head_dim, causal="false", dtype=dtype, timing="kernel", source="simhw-gpu",
                             label=f"sdpa decode b={b} kv={s} h={h}/{kvh}", gpu=gpu))
            del q, k, v
    return rows
