"""Row-wise kernels by row width: softmax, log-softmax, LayerNorm and RMSNorm, forward and backward,
next to GELU (one read, one write: the bandwidth reference) over the same bytes; and the embedding
lookup and its backward.

PyTorch picks a different kernel for a softmax or a norm by the length of the row it reduces (a
warp per row, a block per row with the row held in shared memory, a block per row re-reading it;
one- or two-kernel LayerNorm), so a sweep of row widths at a fixed tensor size shows what each
kernel costs over what its bytes alone would: the ``row`` column holds the width and ``kernels``
names the kernels that ran. Rows are written in simhw's measurement CSV (kind softmax / norm /
elementwise, ``elements``, ``reads``/``writes`` in units of ``elements``); the embedding rows go to
their own file (``embedding.csv``: tokens, vocab, hidden), as the measurement CSV has no embedding
kind.
"""
from __future__ import annotations

WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
# widths and row counts the sweep's fit never saw: model hidden sizes, FFN widths and vocabularies
HOLDOUT = ((8192, 768), (4096, 1600), (8192, 2560), (2048, 3072), (4096, 4544), (8192, 5120), (1024, 6144),
           (4096, 7168), (2048, 11008), (4096, 12288), (1024, 14336), (512, 20480), (256, 28672),
           (512, 32000), (256, 50304), (64, 128256), (1024, 50304), (2000, 1000), (300, 3000))
TOTALS = (1 << 22, 1 << 25)              # elements per tensor: L2-sized and 4-10x past any L2
DTYPES = ("bf16", "fp32")
EMBEDDINGS = ((32000, 4096, 4096), (32000, 4096, 16384), (50304, 1024, 4096), (50304, 1024, 16384),
              (128256, 4096, 8192), (128256, 8192, 4096))   # (vocab, hidden, tokens)

SMOKE_WIDTHS, SMOKE_TOTALS, SMOKE_DTYPES = (64, 2048), (1 << 14,), ("fp32",)
SMOKE_EMBEDDINGS = ((1000, 64, 256),)


def _cases(x, g, w, dtype_name: str):
    """(kind, name, reads, writes, fn) for one input ``x`` [rows, width], an upstream gradient ``g``
    of the same shape and a weight ``w`` [width]: the ops a transformer runs row-wise."""
    import torch
    import torch.nn.functional as F

    width = x.shape[-1]
    aten = torch.ops.aten
    y = torch.softmax(x, dim=-1)
    ly = torch.log_softmax(x, dim=-1)
    _, mean, rstd = aten.native_layer_norm(x, [width], w, w, 1e-5)
    return (
        ("elementwise", "gelu", 1, 1, lambda: F.gelu(x)),
        ("softmax", "softmax", 1, 1, lambda: torch.softmax(x, dim=-1)),
        ("softmax", "log_softmax", 1, 1, lambda: torch.log_softmax(x, dim=-1)),
        ("softmax", "softmax_backward", 2, 1, lambda: aten._softmax_backward_data(g, y, -1, x.dtype)),
        ("softmax", "log_softmax_backward", 2, 1, lambda: aten._log_softmax_backward_data(g, ly, -1, x.dtype)),
        ("norm", "layernorm", 1, 1, lambda: F.layer_norm(x, (width,), w, w)),
        ("norm", "layernorm_backward", 2, 1,
         lambda: aten.native_layer_norm_backward(g, x, [width], mean, rstd, w, w, [True, True, True])),
        ("norm", "rmsnorm", 1, 1, lambda: F.rms_norm(x, (width,), w)),
    )


def measure(quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False,
            shapes: tuple[tuple[int, int], ...] | None = None) -> list[dict]:
    """The sweep (WIDTHS x TOTALS), or ``shapes``: (rows, width) pairs, e.g. HOLDOUT."""
    import torch

    from common import held_s, input_sets, kernel_names, time_kernel, torch_dtype

    rows = []
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    widths = SMOKE_WIDTHS if smoke else WIDTHS[::2] if quick else WIDTHS
    totals = SMOKE_TOTALS if smoke else TOTALS[1:] if quick else TOTALS
    grid = shapes or tuple((total // width, width) for total in totals for width in widths)
    for dtype_name in (SMOKE_DTYPES if smoke else DTYPES):
        dt = torch_dtype(dtype_name)
        size = torch.empty((), dtype=dt).element_size()
        for n_rows, width in grid:
            total = n_rows * width
            sets = input_sets(3 * total * size, device)   # input, gradient, output
            xs = [torch.randn(total // width, width, device=device, dtype=dt) for _ in range(sets)]
            gs = [torch.randn_like(x) for x in xs]
            w = torch.ones(width, device=device, dtype=dt)
            per_set = [_cases(x, g, w, dtype_name) for x, g in zip(xs, gs)]
            for i, (kind, name, reads, writes, _) in enumerate(per_set[0]):
                fns = [cases[i][4] for cases in per_set]
                t = time_kernel(fns, device=device, **timing)
                rows.append(dict(kind=kind, measured_s=t, elements=total, reads=reads, writes=writes,
                                 dtype=dtype_name, op=name, row=width,
                                 timing="kernel", source="simhw-gpu", label=f"{name} {total // width}x{width}",
                                 gpu=gpu, held_s=held_s(t), kernels=kernel_names(fns[0], device)))
            del xs, gs, per_set
    return rows


def measure_embedding(quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    """F.embedding forward (a gather of ``tokens`` rows) and aten.embedding_dense_backward (the
    gradient scattered back into a [vocab, hidden] table: PyTorch sorts the token ids and sums each
    id's rows), bf16, token ids uniform over the vocabulary."""
    import torch
    import torch.nn.functional as F

    from common import held_s, input_sets, kernel_names, time_kernel

    rows = []
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    shapes = SMOKE_EMBEDDINGS if smoke else EMBEDDINGS[:2] if quick else EMBEDDINGS
    dt = torch.bfloat16
    for vocab, hidden, tokens in shapes:
        table = torch.randn(vocab, hidden, device=device, dtype=dt)
        sets = input_sets((vocab + 2 * tokens) * hidden * 2, device)
        ids = [torch.randint(0, vocab, (tokens,), device=device) for _ in range(sets)]
        grads = [torch.randn(tokens, hidden, device=device, dtype=dt) for _ in range(sets)]
        cases = (("forward", [lambda i=i: F.embedding(i, table) for i in ids]),
                 ("backward", [lambda i=i, g=g: torch.ops.aten.embedding_dense_backward(g, i, vocab, -1, False)
                               for i, g in zip(ids, grads)]))
        for direction, fns in cases:
            t = time_kernel(fns, device=device, **timing)
            rows.append(dict(direction=direction, measured_s=t, vocab=vocab, hidden=hidden, tokens=tokens,
                             dtype="bf16", timing="kernel", held_s=held_s(t), gpu=gpu,
                             kernels=kernel_names(fns[0], device)))
        del table, ids, grads
    return rows


EMBEDDING_COLUMNS = ("direction", "measured_s", "vocab", "hidden", "tokens", "dtype", "timing", "held_s", "gpu", "kernels")


RESOURCE_COLUMNS = ("op", "dtype", "row", "rows", "kernel", "registers_per_thread", "shared_memory_bytes", "grid", "block",
                    "blocks_per_sm", "warps_per_sm", "est_occupancy_pct", "gpu")


def kernel_resources(gpu: str = "", device: str = "cuda", smoke: bool = False,
                     shapes: tuple[tuple[int, int], ...] | None = None) -> list[dict]:
    """What each row-wise case launches, from the profiler's kernel records (CUPTI via Kineto):
    registers per thread, shared memory, grid and block, and the occupancy the profiler estimates.
    Registers bound how many blocks an SM holds (65536 per SM), which a time alone cannot say."""
    import json
    import os
    import tempfile

    import torch
    from torch.profiler import ProfilerActivity, profile

    from common import synchronize, torch_dtype

    if device != "cuda":
        return []
    rows = []
    total = SMOKE_TOTALS[0] if smoke else TOTALS[0]
    grid = shapes or tuple((total // width, width) for width in (SMOKE_WIDTHS if smoke else WIDTHS))
    for dtype_name in (SMOKE_DTYPES if smoke else DTYPES):
        dt = torch_dtype(dtype_name)
        for n_rows, width in grid:
            x = torch.randn(n_rows, width, device=device, dtype=dt)
            g = torch.randn_like(x)
            w = torch.ones(width, device=device, dtype=dt)
            for _kind, name, _r, _w, fn in _cases(x, g, w, dtype_name):
                fn()
                synchronize(device)
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    fn()
                    synchronize(device)
                fd, path = tempfile.mkstemp(suffix=".json")
                os.close(fd)
                try:
                    prof.export_chrome_trace(path)
                    with open(path, encoding="utf-8") as fh:
                        events = json.load(fh).get("traceEvents", [])
                finally:
                    os.unlink(path)
                for ev in events:
                    if ev.get("cat") != "kernel":
                        continue
                    a = ev.get("args", {})
                    rows.append(dict(op=name, dtype=dtype_name, row=width, rows=n_rows, kernel=ev["name"][:160],
                                     registers_per_thread=a.get("registers per thread"),
                                     shared_memory_bytes=a.get("shared memory"), grid="x".join(map(str, a.get("grid", []))),
                                     block="x".join(map(str, a.get("block", []))), blocks_per_sm=a.get("blocks per SM"),
                                     warps_per_sm=a.get("warps per SM"), est_occupancy_pct=a.get("est. achieved occupancy %"),
                                     gpu=gpu))
            del x, g, w
    return rows
