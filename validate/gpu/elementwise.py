"""Memory-bound kernels: add (2 reads, 1 write), GELU, LayerNorm, RMSNorm-like, softmax."""
from __future__ import annotations

SIZES = (1 << 16, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28)
HIDDEN = 4096


SMOKE_SIZES = (1 << 14, 1 << 16)


def measure(dtype: str = "bf16", quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from common import held_s, input_sets, kernel_names, time_kernel, torch_dtype

    dt = torch_dtype(dtype)
    rows = []
    timing = dict(warmup=1, reps=2, trials=2) if smoke else {}
    size = torch.empty((), dtype=dt).element_size()
    w = torch.ones(HIDDEN, device=device, dtype=dt)
    for n in (SMOKE_SIZES if smoke else SIZES[::2] if quick else SIZES):
        sets = input_sets(3 * n * size, device)      # two inputs and one output per set (add)
        xs = [torch.randn(n // HIDDEN, HIDDEN, device=device, dtype=dt) for _ in range(sets)]
        ys = [torch.randn_like(x) for x in xs]
        cases = (("elementwise", "add", 2, 1, [lambda x=x, y=y: x + y for x, y in zip(xs, ys)]),
                 ("elementwise", "gelu", 1, 1, [lambda x=x: F.gelu(x) for x in xs]),
                 ("norm", "layernorm", 1, 1, [lambda x=x: F.layer_norm(x, (HIDDEN,), w, w) for x in xs]),
                 ("softmax", "softmax", 1, 1, [lambda x=x: torch.softmax(x, dim=-1) for x in xs]))
        for kind, name, reads, writes, fns in cases:
            t = time_kernel(fns, device=device, **timing)
            rows.append(dict(kind=kind, measured_s=t, elements=n, reads=reads, writes=writes, dtype=dtype,
                             op=name, row=HIDDEN if kind != "elementwise" else "",   # workload/functions.py, cost/rowwise.py
                             timing="kernel", source="simhw-gpu", label=f"{name} {n}", gpu=gpu, held_s=held_s(t),
                             kernels=kernel_names(fns[0], device)))
        del xs, ys
    return rows
