"""GEMM shapes: C[m,n] = A[m,k] x B[n,k]^T (torch.nn.functional.linear, cuBLAS), bf16 and fp16."""
from __future__ import annotations

M_VALUES = (1, 8, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
NK_VALUES = ((4096, 4096), (4096, 12288), (12288, 4096), (11008, 4096), (4096, 11008), (8192, 8192),
             (28672, 8192), (8192, 28672), (1024, 1024), (256, 4096), (65536, 512))


def measure(dtypes=("bf16",), quick: bool = False, gpu: str = "") -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import time_kernel, torch_dtype

    rows = []
    ms = M_VALUES[::3] if quick else M_VALUES
    nks = NK_VALUES[:3] if quick else NK_VALUES
    for dt in dtypes:
        for n, k in nks:
            w = torch.randn(n, k, device="cuda", dtype=torch_dtype(dt))
            for m in ms:
                x = torch.randn(m, k, device="cuda", dtype=torch_dtype(dt))
                t = time_kernel(lambda: F.linear(x, w))
                rows.append(dict(kind="gemm", measured_s=t, m=m, n=n, k=k, dtype=dt, timing="kernel",
                                 source="simhw-gpu", label=f"linear m={m} n={n} k={k}", gpu=gpu))
            del w
    return rows
