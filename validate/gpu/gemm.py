"""GEMM shapes: C[m,n] = A[m,k] x B[n,k]^T (torch.nn.functional.linear, cuBLAS), bf16 and fp16."""
from __future__ import annotations

M_VALUES = (1, 8, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
NK_VALUES = ((4096, 4096), (4096, 12288), (12288, 4096), (11008, 4096), (4096, 11008), (8192, 8192),
             (28672, 8192), (8192, 28672), (1024, 1024), (256, 4096), (65536, 512))


SMOKE_M, SMOKE_NK = (1, 64), ((256, 256), (512, 128))   # the harness's smoke run (any device)


def measure(dtypes=("bf16",), quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import time_kernel, torch_dtype

    rows = []
    ms = SMOKE_M if smoke else M_VALUES[::3] if quick else M_VALUES
    nks = SMOKE_NK if smoke else NK_VALUES[:3] if quick else NK_VALUES
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    for dt in dtypes:
        for n, k in nks:
            w = torch.randn(n, k, device=device, dtype=torch_dtype(dt))
            for m in ms:
                x = torch.randn(m, k, device=device, dtype=torch_dtype(dt))
                t = time_kernel(lambda: F.linear(x, w), device=device, **timing)
                rows.append(dict(kind="gemm", measured_s=t, m=m, n=n, k=k, dtype=dt, timing="kernel",
                                 source="simhw-gpu", label=f"linear m={m} n={n} k={k}", gpu=gpu))
            del w
    return rows
