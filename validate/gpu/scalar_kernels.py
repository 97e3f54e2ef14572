"""Row kernels that keep one scalar load in flight per thread (CuPy raw kernels), written after the
structure of vLLM's 2023 ``rms_norm_kernel`` and ``act_and_mul_kernel`` that sarathi-serve and
vidur profile: one block of min(width, 1024) threads per token, each thread walking its row one fp16
element per loop iteration (RMSNorm: a sum-of-squares pass, a block reduction, then a normalising
pass that re-reads the row and the weight; SiLU-and-mul: the gate and up halves of the row, one
element of each per iteration). Their loops are kept rolled (``#pragma unroll 1``), so each
iteration's loads wait for the one before, as vidur's A100 rows show (about 0.25 us per iteration
and wave: one round trip).

Such kernels are bound by load latency rather than bandwidth (simhw/cost/latency.py), and vidur's
A100 and H100 profiles disagree with the model in how they scale between the chips (the H100 runs
them 1.6-1.9x faster at 2-4 k tokens where the model says 1.4x: validate/REPORT.md). These rows
give the answer on the GPU at hand: the token sweep crosses the first waves of blocks (two
1024-thread blocks per SM: 2 x SMs tokens per wave) and reaches the full device, for two widths of
each kernel. Written in simhw's measurement CSV (kind norm / elementwise, ``load_bytes`` 2) as
``scalar_kernels.csv``, so ``simhw validate`` checks them like vidur's rows. Every launch reads the
row the launch before it read, so rows that fit in the L2 are read from it (``fresh_reads``).
Timed with CUDA events around back-to-back launches (no graph: CuPy's launches are not captured),
which hides the launch cost behind kernels longer than it. Needs CuPy; skipped without it.
"""
from __future__ import annotations

RMS_WIDTHS = (4096, 8192)          # Llama-2-7B and -70B hidden sizes
SILU_WIDTHS = (3584, 11008)        # Llama-2-70B's FFN width at TP 8, Llama-2-7B's at TP 1
WAVE_OFFSETS = (-8, 0, 8)          # tokens around the first wave's end (2 x SMs blocks)
MANY_TOKENS = (1, 16, 4096)
# the columns of simhw's measurement CSV these rows fill (common.COLUMNS lacks load_bytes and fresh_reads)
COLUMNS = ("kind", "measured_s", "elements", "reads", "writes", "dtype", "load_bytes", "fresh_reads", "timing",
           "power", "source", "label", "gpu")

_SOURCE = r"""
#include <cuda_fp16.h>
extern "C" __global__ void scalar_rmsnorm(__half* __restrict__ out, const __half* __restrict__ in,
                                          const __half* __restrict__ w, int width, float eps) {
    __shared__ float partial[32];
    __shared__ float scale;
    const __half* row = in + (long long)blockIdx.x * width;
    float acc = 0.f;
    #pragma unroll 1
    for (int i = threadIdx.x; i < width; i += blockDim.x) { float x = __half2float(row[i]); acc += x * x; }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffff, acc, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x + 31) / 32 ? partial[threadIdx.x] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
        if (threadIdx.x == 0) scale = rsqrtf(v / width + eps);
    }
    __syncthreads();
    __half* dst = out + (long long)blockIdx.x * width;
    #pragma unroll 1
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        dst[i] = __float2half(__half2float(row[i]) * scale * __half2float(w[i]));
}
extern "C" __global__ void scalar_silu_and_mul(__half* __restrict__ out, const __half* __restrict__ in, int width) {
    const __half* row = in + (long long)blockIdx.x * 2 * width;
    __half* dst = out + (long long)blockIdx.x * width;
    #pragma unroll 1
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        float x = __half2float(row[i]), y = __half2float(row[width + i]);
        dst[i] = __float2half(x / (1.f + __expf(-x)) * y);
    }
}
"""


def token_counts(sms: int) -> tuple[int, ...]:
    """Tokens to sweep on a GPU of ``sms`` SMs: a few tokens, the first wave's end and full waves."""
    wave = 2 * sms
    return tuple(sorted({*MANY_TOKENS, *(wave + d for d in WAVE_OFFSETS), 4 * wave}))


def _row(kind: str, name: str, tokens: int, width: int, reads: int, ms: float, gpu: str, regs: int) -> dict:
    return dict(kind=kind, measured_s=ms / 1e3, elements=tokens * width, reads=reads, writes=1, dtype="fp16",
                load_bytes=2, fresh_reads=reads, timing="kernel", source="simhw-gpu", gpu=gpu,
                label=f"{name} tokens={tokens} width={width} block={min(width, 1024)} regs={regs}")


def measure(gpu: str = "", quick: bool = False, device: str = "cuda") -> list[dict]:
    """Both kernels over token_counts() x their widths (the first width only with ``quick``)."""
    if device != "cuda":
        return []
    try:
        import cupy as cp
        import numpy as np
    except ImportError:
        print("scalar_kernels: CuPy is not installed; skipped")
        return []
    from microbench import _time_ms

    module = cp.RawModule(code=_SOURCE, options=("-std=c++14",))
    rms, silu = module.get_function("scalar_rmsnorm"), module.get_function("scalar_silu_and_mul")
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    rows = []
    for width in RMS_WIDTHS[:1] if quick else RMS_WIDTHS:
        w = cp.ones(width, dtype=cp.float16)
        for tokens in token_counts(sms):
            x = cp.random.random(tokens * width, dtype=cp.float32).astype(cp.float16)
            y = cp.empty_like(x)
            block = min(width, 1024)
            args = (y, x, w, np.int32(width), np.float32(1e-6))
            ms = _time_ms(cp, lambda t=tokens, b=block, a=args: rms((t,), (b,), a), 20)
            rows.append(_row("norm", "scalar_rmsnorm", tokens, width, 1, ms, gpu, getattr(rms, "num_regs", -1)))
            del x, y, args
    for width in SILU_WIDTHS[:1] if quick else SILU_WIDTHS:
        for tokens in token_counts(sms):
            x = cp.random.random(tokens * 2 * width, dtype=cp.float32).astype(cp.float16)
            y = cp.empty(tokens * width, dtype=cp.float16)
            block = min(width, 1024)
            args = (y, x, np.int32(width))
            ms = _time_ms(cp, lambda t=tokens, b=block, a=args: silu((t,), (b,), a), 20)
            rows.append(_row("elementwise", "scalar_silu_and_mul", tokens, width, 2, ms, gpu,
                             getattr(silu, "num_regs", -1)))
            del x, y, args
    return rows
