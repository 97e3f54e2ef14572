"""Memory-bound kernels: add (2 reads, 1 write), GELU, LayerNorm, RMSNorm-like, softmax."""
from __future__ import annotations

SIZES = (1 << 16, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28)
HIDDEN = 4096


SMOKE_SIZES = (1 << 14, 1 << 16)


def measure(dtype: str = "bf16", quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import time_kernel, torch_dtype

    dt = torch_dtype(dtype)
    rows = []
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    for n in (SMOKE_SIZES if smoke else SIZES[::2] if quick else SIZES):
        x = torch.randn(n // HIDDEN, HIDDEN, device=device, dtype=dt)
        y = torch.randn_like(x)
        w = torch.ones(HIDDEN, device=device, dtype=dt)
        cases = (("elementwise", "add", 2, 1, lambda: x + y), ("elementwise", "gelu", 1, 1, lambda: F.gelu(x)),
                 ("norm", "layernorm", 1, 1, lambda: F.layer_norm(x, (HIDDEN,), w, w)),
                 ("softmax", "softmax", 1, 1, lambda: torch.softmax(x, dim=-1)))
        for kind, name, reads, writes, fn in cases:
            t = time_kernel(fn, device=device, **timing)
            rows.append(dict(kind=kind, measured_s=t, elements=n, reads=reads, writes=writes, dtype=dtype,
                             timing="kernel", source="simhw-gpu", label=f"{name} {n}", gpu=gpu))
        del x, y
    return rows
