"""GEMMs whose operands a loop re-reads: L2 residency on this GPU (simhw/cost/roofline.py l2_hits).

aiconfigurator's GEMM collector applies six weight matrices in turn to one input (so the input is
re-read after one weight and one output, each weight after the input, the other five weights and
six outputs). This part times that loop (``loop=6``: the input ``x`` re-read, ``a_reuse_bytes`` and
``b_reuse_bytes`` filled from the same accounting as validate/convert.py's aiconfigurator
converter) and the same shapes with rotated input sets (cold, empty reuse cells), so the ratio of
the two shows where an operand stops fitting the L2. n is small (the input dominates the bytes)
and m x k sweeps the input from 8 MB to about 130 MB across the L2 size.
"""
from __future__ import annotations

LAYERS = 6
MK = ((4096, 1024), (4096, 2048), (4096, 3072), (4096, 4096), (4096, 5120), (4096, 6144), (4096, 7168),
      (4096, 8192), (4096, 10240), (8192, 4096), (8192, 6144), (8192, 8192))
N_VALUES = (32, 256)
SMOKE_MK, SMOKE_N = ((64, 128),), (32,)


def reuse_bytes(m: int, n: int, k: int, esize: int) -> tuple[int, int]:
    """(a_reuse_bytes, b_reuse_bytes) of one GEMM in the six-layer loop: bytes touched between two
    reads of the input (one other weight and one output) and of a weight (the input, the other five
    weights and all six outputs)."""
    x, w, out = m * k * esize, n * k * esize, m * n * esize
    return w + out, x + (LAYERS - 1) * w + LAYERS * out


def measure(quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import held_s, input_sets, kernel_names, time_kernel

    rows = []
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    dt, esize = torch.bfloat16, 2
    for n in (SMOKE_N if smoke else N_VALUES):
        for m, k in (SMOKE_MK if smoke else MK[::3] if quick else MK):
            ws = [torch.randn(n, k, device=device, dtype=dt) for _ in range(LAYERS)]
            x = torch.randn(m, k, device=device, dtype=dt)

            def loop(x=x, ws=ws):
                for w in ws:
                    F.linear(x, w)
            t = time_kernel(loop, device=device, **timing) / LAYERS
            a_reuse, b_reuse = reuse_bytes(m, n, k, esize)
            rows.append(dict(kind="gemm", measured_s=t, m=m, n=n, k=k, dtype="bf16", a_reuse_bytes=a_reuse,
                             b_reuse_bytes=b_reuse, timing="kernel", source="simhw-gpu",
                             label=f"linear loop=6 m={m} n={n} k={k}", gpu=gpu, held_s=held_s(t * LAYERS),
                             kernels=kernel_names(lambda: F.linear(x, ws[0]), device)))
            del ws, x
            sets = input_sets((m * k + n * k + m * n) * esize, device)
            xs = [torch.randn(m, k, device=device, dtype=dt) for _ in range(sets)]
            cold_ws = [torch.randn(n, k, device=device, dtype=dt) for _ in range(sets)]
            fns = [lambda x=x, w=w: F.linear(x, w) for x, w in zip(xs, cold_ws)]
            t = time_kernel(fns, device=device, **timing)
            rows.append(dict(kind="gemm", measured_s=t, m=m, n=n, k=k, dtype="bf16", timing="kernel",
                             source="simhw-gpu", label=f"linear cold m={m} n={n} k={k}", gpu=gpu,
                             held_s=held_s(t), kernels=kernel_names(fns[0], device)))
            del xs, cold_ws, fns
    return rows
