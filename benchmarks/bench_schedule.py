"""Build and solve time of the schedule optimisation models (simhw's own speed, not a test).

    python benchmarks/bench_schedule.py

(1) the token-wise activation LP (MEMO §4.1 generalised) at 32, 80 and 200 layers;
(3) the memory-placement MIP (MEMO §4.2) on one transformer layer's forward + backward tensors,
and the bi-level version for a 32-layer model. Targets: (1) ≤ 1 s at 80 layers, (3) ≤ 10 s.
"""
from __future__ import annotations

import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simhw.schedule import placement, tokenwise  # noqa: E402
from simhw.schedule.placement import LayerBlock, PlacementData, TensorLifetime  # noqa: E402
from simhw.schedule.tokenwise import (LayerActivations, Placement, SavedTensorClass,  # noqa: E402
                                      TokenwiseData)

GB = 1e9


def tokenwise_instance(num_layers: int, seq_len: int = 1 << 20, hidden: int = 4096,
                       tp: int = 8) -> TokenwiseData:
    """MEMO-like 7B layer at 1M tokens per GPU share (seed-targets §2b): 16·s·h elements of 2 B saved
    per layer, split in MEMO's classes, plus an all-placement 'others' class per sublayer."""
    unit = seq_len * hidden * 2 / tp  # bytes of one s·h tensor on one GPU
    fwd_s = 16 * unit / 20e9  # a forward time that makes PCIe (20 GB/s) roughly balanced
    classes = (
        SavedTensorClass("input", unit, 0.0, frozenset({Placement.CPU, Placement.NVME, Placement.KEEP})),
        SavedTensorClass("flash_out", unit, 0.0, frozenset({Placement.CPU, Placement.NVME, Placement.KEEP})),
        SavedTensorClass("norm_qkv", 5 * unit, 0.05 * fwd_s),
        SavedTensorClass("attn_post", 2 * unit, 0.03 * fwd_s),
        SavedTensorClass("mlp_up", 4 * unit, 0.15 * fwd_s),
        SavedTensorClass("gelu_out", 3 * unit, 0.02 * fwd_s),
    )
    layers = tuple(LayerActivations(fwd_s * (1 + 0.01 * (i % 3)), 2 * fwd_s, classes)
                   for i in range(num_layers))
    return TokenwiseData(layers=layers, device_capacity_bytes=60 * GB, host_capacity_bytes=250 * GB,
                         pcie_bandwidth_bytes_per_s=20 * GB, nvme_capacity_bytes=2000 * GB,
                         nvme_bandwidth_bytes_per_s=6 * GB, device_power_w=400.0,
                         pcie_energy_j_per_byte=20e-12, nvme_energy_j_per_byte=50e-12)


def transformer_layer_tensors(s: int = 2048, b: int = 1, h: int = 4096,
                              a: int = 32) -> tuple[TensorLifetime, ...]:
    """One transformer layer's forward and backward tensors with lifetimes (Korthikanti et al. §4.1
    sizes: 2-byte activations, 1-byte dropout masks; no FlashAttention, so the as² terms appear).
    Forward op k runs at step k, its backward at step 2F − 1 − k; saved tensors live from their
    producer to their consumer's backward; each backward op allocates the gradient of its input."""
    sbh, as2b = s * b * h, a * s * s * b
    # (name, bytes, producing forward op, forward op whose backward frees it; None = transient to next op)
    fwd = [("x_in", 2 * sbh, 0, 1), ("ln1_out", 2 * sbh, 1, 2), ("q", 2 * sbh, 2, 3), ("k", 2 * sbh, 2, 3),
           ("v", 2 * sbh, 2, 6), ("scores", 2 * as2b, 3, None), ("softmax", 2 * as2b, 4, 4),
           ("attn_drop_mask", as2b, 5, 5), ("attn_drop", 2 * as2b, 5, 6), ("ctx", 2 * sbh, 6, 7),
           ("proj_out", 2 * sbh, 7, None), ("proj_mask", sbh, 8, 8), ("resid1", 2 * sbh, 8, 9),
           ("ln2_out", 2 * sbh, 9, 10), ("fc1_out", 8 * sbh, 10, 11), ("gelu_out", 8 * sbh, 11, 12),
           ("fc2_out", 2 * sbh, 12, None), ("mlp_mask", sbh, 13, 13), ("y_out", 2 * sbh, 13, 14)]
    num_fwd = 14
    tensors = []
    for name, size, made, freed_by in fwd:
        end = made + 2 if freed_by is None else 2 * num_fwd - freed_by
        tensors.append(TensorLifetime(name, float(size), made, end))
    grads = [("g_y", 2 * sbh, 13), ("g_fc2_in", 8 * sbh, 12), ("g_gelu_in", 8 * sbh, 11),
             ("g_fc1_in", 2 * sbh, 10), ("g_ln2_in", 2 * sbh, 9), ("g_proj_in", 2 * sbh, 7),
             ("g_ctx_probs", 2 * as2b, 6), ("g_v", 2 * sbh, 6), ("g_softmax_in", 2 * as2b, 4),
             ("g_q", 2 * sbh, 3), ("g_k", 2 * sbh, 3), ("g_ln1_in", 2 * sbh, 1), ("g_x", 2 * sbh, 0)]
    for name, size, op in grads:
        step = 2 * num_fwd - 1 - op
        tensors.append(TensorLifetime(name, float(size), step, step + 2))
    return tuple(tensors)


def _time(fn, *args, repeat: int = 3, **kwargs):
    """Best wall time of ``repeat`` calls and the result of that call."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        elapsed = time.perf_counter() - t0
        if elapsed < best:
            best, out = elapsed, result
    return best, out


def main() -> None:
    rows = []
    tokenwise.build_model(tokenwise_instance(4))  # import and first-build warm-up
    for n in (32, 80, 200):
        data = tokenwise_instance(n)
        total_s, r = _time(tokenwise.solve, data)
        m = tokenwise.build_model(data)
        rows.append((f"(1) tokenwise LP, {n} layers", m.nvariables(), m.nconstraints(), r.build_time_s,
                     r.solve_time_s, total_s, r.status.value, f"extra {r.extra_time_s:.3g} s"))
    tensors = transformer_layer_tensors()
    for tl in (10.0,):
        data = PlacementData(tensors)
        total_s, r = _time(placement.solve, data, repeat=1, time_limit_s=tl)
        m = placement.build_model(data)
        rows.append((f"(3) placement MIP, 1 layer, {len(tensors)} tensors", m.nvariables(), m.nconstraints(),
                     r.build_time_s, r.solve_time_s, total_s, r.status.value,
                     f"peak {r.peak_bytes / GB:.3f} GB, live {r.max_live_bytes / GB:.3f} GB, "
                     f"frag {r.fragmentation_bytes / GB:.3f} GB"))
    blocks = tuple(LayerBlock(f"layer{i}", tensors, i, 64 - i) for i in range(32))
    total_s, r = _time(placement.solve_bilevel, placement.BilevelData(blocks), repeat=1)
    rows.append(("(3) bi-level, 32 layers", "", "", r.level1[0].build_time_s + r.level2.build_time_s,
                 r.level1[0].solve_time_s + r.level2.solve_time_s, total_s, r.level2.status.value,
                 f"peak {r.peak_bytes / GB:.3f} GB, frag {r.fragmentation_bytes / GB:.3f} GB"))
    print(f"simhw schedule benchmark ({platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, HiGHS threads=1)")
    header = ("model", "vars", "cons", "build s", "solve s", "total s", "status", "result")
    widths = [44, 6, 6, 8, 8, 8, 11, 0]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        cells = [row[0], str(row[1]), str(row[2]), f"{row[3]:.3f}", f"{row[4]:.3f}", f"{row[5]:.3f}",
                 row[6], row[7]]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))


if __name__ == "__main__":
    main()
