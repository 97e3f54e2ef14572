"""Fixed costs of the smallest kernels: each call's time replayed back to back in a CUDA graph
against its kernels' own durations (CUPTI, through torch.profiler), for tiny GEMMs and adds.

Public sets time kernels two ways. aiconfigurator replays a CUDA graph and divides by the calls
(the time per call then includes the gap between one kernel's end and the next one's start);
vidur and simhw's trace comparisons read the kernels' durations from the profiler, which leave that
gap out. On the A100 sets the smallest graph-replayed GEMMs take 2.45-2.8 us and vidur's
profiled 8 KiB add 2 us, and on vidur's H100 sample that add takes 1 us where simhw's own
graph-replayed add takes 1.9 us (validate/data/h100-2026-11-26): simhw's ``launch`` (one number
per GPU) cannot be both. These rows measure the two on one GPU for the same calls, with the
operands left in L2 between calls as aiconfigurator's loop leaves its weights, so the gap and each
kernel family's floor (a GEMV, a small tensor-core GEMM, a split-K GEMM and its reduction: the
``kernels`` column names them) are facts of the chip and its libraries, not fits.

Writes ``floors.csv``: test, m, n, k, elements, dtype, graph_s (per call, graph replay),
profiler_s (summed kernel durations per call; empty on the host), kernels, gpu.
"""
from __future__ import annotations

GEMM_M = (1, 16, 64)
GEMM_N = (32, 256, 4096)
GEMM_K = (32, 128, 1024)
# pairs just below and at 2^21 multiply-adds with m >= 32: on the A100 cuBLAS switches there from a
# slower kernel to its one-stage 32 x 32 one (hwspecs/a100.yaml gemm_light_min_macs); the kernel
# names say what runs below the switch, and whether another GPU's cuBLAS switches too
MAC_SWITCH = ((32, 1536, 32), (32, 2048, 32), (48, 512, 64), (64, 512, 64), (128, 64, 128), (128, 128, 128))
ADD_ELEMENTS = (1 << 10, 1 << 14, 1 << 18, 1 << 20)
SMOKE_GEMMS, SMOKE_ADDS = ((1, 32, 32), (16, 256, 128)), (1 << 10,)
PROFILED_CALLS = 20

COLUMNS = ("test", "m", "n", "k", "elements", "dtype", "graph_s", "profiler_s", "kernels", "gpu")


def profiled_s(fn, device: str = "cuda", calls: int = PROFILED_CALLS) -> float | None:
    """Summed durations of the CUDA kernels (and copies) one call of ``fn`` runs, in seconds: the
    profiler's records over ``calls`` calls after one warm-up, divided by ``calls``. None on the
    host, where there are no kernel records."""
    if device != "cuda":
        return None
    import torch
    from torch.profiler import ProfilerActivity, profile

    from common import synchronize

    fn()
    synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        synchronize(device)
    total_us = sum(e.time_range.elapsed_us() for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA)
    return total_us / 1e6 / calls


def measure(dtype: str = "bf16", gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    """The GEMM grid (GEMM_M x GEMM_N x GEMM_K, y = x W^T with one weight reused by every call) and
    the adds (ADD_ELEMENTS), each timed both ways (module docstring)."""
    import torch
    import torch.nn.functional as F

    from common import kernel_names, time_kernel, torch_dtype

    tdt = torch_dtype(dtype)
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    calls = 2 if smoke else PROFILED_CALLS

    def timed(fn, **keys) -> dict:      # one row: the call timed both ways, and what it ran
        return dict(keys, dtype=dtype, graph_s=time_kernel(fn, device=device, **timing),
                    profiler_s=profiled_s(fn, device, calls), kernels=kernel_names(fn, device), gpu=gpu)

    grid = [(m, n, k) for m in GEMM_M for n in GEMM_N for k in GEMM_K]
    gemms = SMOKE_GEMMS if smoke else grid + list(MAC_SWITCH)
    rows = []
    for m, n, k in gemms:
        x = torch.randn(m, k, device=device, dtype=tdt)
        w = torch.randn(n, k, device=device, dtype=tdt)
        rows.append(timed(lambda x=x, w=w: F.linear(x, w), test="gemm", m=m, n=n, k=k))
    for elements in SMOKE_ADDS if smoke else ADD_ELEMENTS:
        a = torch.randn(elements, device=device, dtype=tdt)
        b = torch.randn(elements, device=device, dtype=tdt)
        rows.append(timed(lambda a=a, b=b: torch.add(a, b), test="add", elements=elements))
    return rows
