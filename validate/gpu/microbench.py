"""Memory-system microbenchmarks (CuPy raw kernels): read bandwidth over a working set of each size
(L2-resident sets give the L2 bandwidth, large ones HBM's) and dependent-load latency (pointer
chase over a random cycle of cache lines: L2-resident and HBM-sized). A random cycle over 1 GiB
also misses the address-translation caches on many hops; ``load_latency_paged`` walks the same
1 GiB page by page (2 MiB pages in order, the lines of each page in random order), so each hop
still misses the L2 but stays in the page of the hop before it: the round trip a streaming
kernel's loads see (simhw/cost/latency.py), apart from the translation misses of a random walk.

These give the spec's ``l2`` bandwidth and the memory latencies as measured facts of the chip, not
fits to the operator rows. Writes ``microbench.csv`` (test, bytes, passes, time_s, value, unit).
Needs CuPy with a CUDA GPU; skipped (with a message) without it.
"""
from __future__ import annotations

import csv
from pathlib import Path

READ_SIZES = (1 << 22, 1 << 23, 1 << 24, 1 << 25, 3 << 24, 1 << 26, 1 << 27, 1 << 28, 1 << 30, 1 << 32)
CHASE_SIZES = (1 << 20, 1 << 24, 1 << 28, 1 << 30)
PAGE_BYTES = 2 << 20         # the driver's large pages: a paged chase walks them in order
THREADS, BLOCKS_PER_SM = 256, 8

_SOURCE = r"""
__device__ __forceinline__ float4 load_cg(const float4* p) {   // L2-cached load the compiler may not merge
    float4 v;
    asm volatile("ld.global.cg.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
    return v;
}
__device__ __forceinline__ unsigned int load_cg_u32(const unsigned int* p) {
    unsigned int v;
    asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
extern "C" __global__ void read_bw(const float4* __restrict__ a, long long n4, int passes, float* out) {
    // each pass sweeps the whole buffer (grid-stride, four loads in flight per thread), so a
    // buffer larger than the L2 is read from HBM on every pass
    long long stride = (long long)gridDim.x * blockDim.x;
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    float acc = 0.f;
    for (int p = 0; p < passes; ++p) {
        long long i = t;
        for (; i + 3 * stride < n4; i += 4 * stride) {
            float4 v0 = load_cg(a + i), v1 = load_cg(a + i + stride);
            float4 v2 = load_cg(a + i + 2 * stride), v3 = load_cg(a + i + 3 * stride);
            acc += v0.x + v1.y + v2.z + v3.w;
        }
        for (; i < n4; i += stride) { float4 v = load_cg(a + i); acc += v.x; }
    }
    if (acc == 1234.5f) out[0] = acc;      // keeps the loads; never true on the random data
}
extern "C" __global__ void chase(const unsigned int* __restrict__ next, int steps, unsigned int* out) {
    unsigned int j = 0;
    for (int s = 0; s < steps; ++s) j = load_cg_u32(next + j);
    out[0] = j;
}
"""


def _time_ms(cp, launch, reps: int, windows: int = 5) -> float:
    """Median over ``windows`` of the mean time of ``reps`` launches (ms), after one warm-up launch."""
    import statistics

    launch()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(windows):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(reps):
            launch()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / reps)
    return statistics.median(times)


def measure(out_dir: Path, quick: bool = False) -> list[dict]:
    try:
        import cupy as cp
        import numpy as np
    except ImportError:
        print("microbench: CuPy is not installed; skipped")
        return []
    module = cp.RawModule(code=_SOURCE)
    read_bw, chase = module.get_function("read_bw"), module.get_function("chase")
    out = cp.zeros(4, dtype=cp.float32)
    rows = []
    for nbytes in (READ_SIZES[::2] if quick else READ_SIZES):
        a = cp.random.random(nbytes // 4, dtype=cp.float32)
        n4 = nbytes // 16
        blocks = BLOCKS_PER_SM * cp.cuda.Device().attributes["MultiProcessorCount"]
        passes = max(1, min(256, (1 << 32) // nbytes))     # about 4 GB of loads per launch
        ms = _time_ms(cp, lambda: read_bw((blocks,), (THREADS,), (a, np.int64(n4), np.int32(passes), out)), 3)
        rows.append(dict(test="read_bandwidth", bytes=nbytes, passes=passes, time_s=ms / 1e3,
                         value=nbytes * passes / (ms / 1e3), unit="B/s"))
        del a
    rng = np.random.default_rng(0)
    l2_bytes = cp.cuda.Device().attributes["L2CacheSize"]
    for test, nbytes in [("load_latency", n) for n in CHASE_SIZES] + [("load_latency_paged", CHASE_SIZES[-1])]:
        lines = nbytes // 128                               # one hop per 128-byte line
        if test == "load_latency_paged":                    # pages in order, lines shuffled inside each
            per_page = PAGE_BYTES // 128
            order = (np.arange(lines) // per_page * per_page
                     + rng.permuted(np.tile(np.arange(per_page), lines // per_page).reshape(-1, per_page), axis=1).ravel())
            order = order.astype(np.uint64)
        else:
            order = rng.permutation(lines).astype(np.uint64)
        nxt = np.zeros(lines * 32, dtype=np.uint32)
        nxt[order * 32] = (np.roll(order, -1) * 32).astype(np.uint32)
        d = cp.asarray(nxt)
        res = cp.zeros(1, dtype=cp.uint32)
        # every hop of the timed chase must be new to the L2 for an HBM-sized set (four times the
        # L2 or more): the chase walks the cycle (up to 2^21 hops); L2-sized sets are walked once
        # first to warm the cache
        hbm_sized = nbytes >= 4 * l2_bytes
        steps = min(lines, 1 << 21) if hbm_sized else 20000
        if not hbm_sized:
            chase((1,), (1,), (d, np.int32(lines), res))
        ms = _time_ms(cp, lambda: chase((1,), (1,), (d, np.int32(steps), res)), 1, windows=3)
        rows.append(dict(test=test, bytes=nbytes, passes=steps, time_s=ms / 1e3,
                         value=ms / 1e3 / steps, unit="s"))
        del d
    path = Path(out_dir) / "microbench.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["test", "bytes", "passes", "time_s", "value", "unit"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
