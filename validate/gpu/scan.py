"""Gated DeltaNet scans (Qwen3-Next's linear attention) with flash-linear-attention's kernels, when
the `fla` package is installed: the chunked prefill scan and the one-token decode step. Rows are
simhw's kind ``scan`` (simhw/validation/schema.py); `simhw calibrate` fits scan_step_latency on them.
Without fla, or on the CPU, it measures nothing and says so."""
from __future__ import annotations

import sys

PREFILL = ((1, 1024, 16), (1, 4096, 16), (1, 16384, 16), (4, 2048, 32), (1, 8192, 64), (16, 1024, 8))  # (batch, T, heads)
DECODE = ((1, 32), (16, 32), (64, 32), (256, 32), (64, 8))                                               # (batch, heads)
HEAD_DIM = 128


def measure(dtype: str = "bf16", quick: bool = False, gpu: str = "", device: str = "cuda", smoke: bool = False) -> list[dict]:
    if device != "cuda":
        return []
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule
    except ImportError:
        sys.stderr.write("scan: flash-linear-attention (pip install flash-linear-attention) is not installed; "
                         "no scan rows.\n")
        return []
    import torch
    import torch.nn.functional as F

    from common import held_s, kernel_names, time_kernel, torch_dtype

    dt = torch_dtype(dtype)
    prefill, decode = (PREFILL[:2], DECODE[:2]) if quick or smoke else (PREFILL, DECODE)
    rows = []

    def inputs(b, t, h):
        q, k = (F.normalize(torch.randn(b, t, h, HEAD_DIM, device=device, dtype=dt), dim=-1) for _ in range(2))
        v = torch.randn(b, t, h, HEAD_DIM, device=device, dtype=dt)
        g = -torch.rand(b, t, h, device=device, dtype=torch.float32)        # log decay < 0
        beta = torch.rand(b, t, h, device=device, dtype=dt)
        return q, k, v, g, beta

    def row(t_s, b, t, h, label, kernels):
        return dict(kind="scan", measured_s=t_s, batch=b, seq_q=t, heads=h, kv_heads=h, head_dim=HEAD_DIM,
                    op="gated_deltanet", dtype=dtype, timing="kernel", source="simhw-gpu", label=label, gpu=gpu,
                    kernels=kernels, held_s=held_s(t_s))
    try:
        for b, t, h in prefill:
            q, k, v, g, beta = inputs(b, t, h)
            fn = lambda: chunk_gated_delta_rule(q, k, v, g, beta, output_final_state=True)  # noqa: E731
            rows.append(row(time_kernel([fn]), b, t, h, f"fla chunk_gated_delta_rule b={b} T={t} h={h}",
                            kernel_names(fn)))
        for b, h in decode:
            q, k, v, g, beta = inputs(b, 1, h)
            state = torch.zeros(b, h, HEAD_DIM, HEAD_DIM, device=device, dtype=torch.float32)
            fn = lambda: fused_recurrent_gated_delta_rule(q, k, v, g, beta, initial_state=state,  # noqa: E731
                                                          output_final_state=True)
            rows.append(row(time_kernel([fn]), b, 1, h, f"fla fused_recurrent_gated_delta_rule b={b} h={h}",
                            kernel_names(fn)))
    except (TypeError, RuntimeError) as exc:     # another fla version's signature: keep what was measured
        sys.stderr.write(f"scan: stopped at an fla call ({exc}); {len(rows)} rows kept.\n")
    return rows
