"""GEMM shapes: C[m,n] = A[m,k] x B[n,k]^T (torch.nn.functional.linear, cuBLAS), bf16 and fp16."""
from __future__ import annotations

M_VALUES = (1, 8, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
NK_VALUES = ((4096, 4096), (4096, 12288), (12288, 4096), (11008, 4096), (4096, 11008), (8192, 8192),
             (28672, 8192), (8192, 28672), (1024, 1024), (256, 4096), (65536, 512))


SMOKE_M, SMOKE_NK = (1, 64), ((256, 256), (512, 128))   # the harness's smoke run (any device)


def measure(dtypes=("bf16",), quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import held_s, input_sets, kernel_names, time_kernel, torch_dtype

    rows = []
    ms = SMOKE_M if smoke else M_VALUES[::3] if quick else M_VALUES
    nks = SMOKE_NK if smoke else NK_VALUES[:3] if quick else NK_VALUES
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    for dt in dtypes:
        tdt = torch_dtype(dt)
        size = torch.empty((), dtype=tdt).element_size()
        for n, k in nks:
            ws = [torch.randn(n, k, device=device, dtype=tdt) for _ in range(input_sets(n * k * size, device))]
            for m in ms:
                sets = input_sets((m * k + n * k + m * n) * size, device)
                xs = [torch.randn(m, k, device=device, dtype=tdt) for _ in range(sets)]
                fns = [lambda x=x, w=w: F.linear(x, w) for x, w in zip(xs, ws)]
                t = time_kernel(fns, device=device, **timing)
                rows.append(dict(kind="gemm", measured_s=t, m=m, n=n, k=k, dtype=dt, timing="kernel",
                                 source="simhw-gpu", label=f"linear m={m} n={n} k={k}", gpu=gpu, held_s=held_s(t),
                                 kernels=kernel_names(fns[0], device)))
                del xs, fns
            del ws
    return rows
