"""Shared helpers for the GPU measurement scripts: environment record, timing, CSV rows.

Every script writes rows in simhw's measurement CSV (simhw/validation/schema.py): ``kind``, the
shape columns, ``measured_s`` and ``source``/``label``. Kernel times (``timing=kernel``) come from
CUDA events around the replay of a CUDA graph of ``reps`` back-to-back launches (median of
``trials`` replays), so host launch overhead stays out; the launches cycle through enough copies of
the inputs to cover 4x the L2, so operands come from HBM (cold-cache timing).
Import-safe without PyTorch: torch is imported inside the functions.
"""
from __future__ import annotations

import csv
import json
import platform
import statistics
from pathlib import Path

COLUMNS = ("kind", "measured_s", "m", "n", "k", "dtype", "batch", "seq_q", "seq_kv", "heads", "kv_heads",
           "head_dim", "causal", "kv_cache_write", "op", "bytes", "ranks", "ranks_per_node", "elements",
           "reads", "writes", "row", "a_reuse_bytes", "b_reuse_bytes", "timing", "pinned", "power", "held_s", "source",
           "label", "gpu", "kernels")
KERNEL_NAME_CHARS = 160     # a templated CUTLASS kernel name runs to hundreds of characters


def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def environment() -> dict:
    """GPU name and software versions, written next to the CSV as env.json."""
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "platform": platform.platform()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=torch.cuda.get_device_name(0), sm_count=props.multi_processor_count,
                   memory_bytes=props.total_memory, capability=f"{props.major}.{props.minor}")
        env["nvidia_smi"] = smi("driver_version,clocks.max.sm,power.limit")
        env["l2_bytes"] = l2_bytes()
    return env


def synchronize(device: str = "cuda") -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


ROTATION_L2_MULTIPLE = 4    # input sets cycled per measurement cover this many times the L2 (cold-cache timing)
SOAK_S = 0.0                # seconds each kernel runs back to back before it is timed (run_all --soak)
MAX_SETS = 256
STATS = {"graph_timed": 0, "eager_timed": 0}   # how each kernel time was taken (written to env.json)


def l2_bytes(device: str = "cuda") -> int:
    """The GPU's L2 size in bytes (0 on the host)."""
    if device != "cuda":
        return 0
    import torch

    return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0) or 0)


def input_sets(bytes_per_set: int, device: str = "cuda") -> int:
    """How many copies of a kernel's inputs to cycle through so that one pass over them covers
    ``ROTATION_L2_MULTIPLE`` times the L2: each launch then reads its operands from HBM, as a
    layer's weights are read in a real model, instead of from the L2 the previous launch filled."""
    target = ROTATION_L2_MULTIPLE * l2_bytes(device)
    if target <= 0 or bytes_per_set <= 0:
        return 1
    return max(1, min(MAX_SETS, -(-target // int(bytes_per_set))))


def _as_list(fns):
    return list(fns) if isinstance(fns, (list, tuple)) else [fns]


def held_s(t: float, warmup: int = 5, reps: int = 20, trials: int = 5) -> float:
    """Seconds a row's kernel holds the board back to back (time_kernel's launches, plus the soak),
    written as the row's held_s: the die warms over them (simhw/cost/power.py)."""
    return (warmup + reps * (1 + trials)) * t + SOAK_S


def time_kernel(fns, warmup: int = 5, reps: int = 20, trials: int = 5, device: str = "cuda") -> float:
    """Kernel time of one call (seconds): the median over ``trials`` of the mean of ``reps``
    back-to-back calls. ``fns`` is one callable or a list of them (one per input set, cycled).

    On a GPU the ``reps`` calls are captured once in a CUDA graph and the graph is replayed between
    CUDA events, so host launch overhead does not leak into a kernel shorter than it; where capture
    fails the calls are launched eagerly between the events. On ``device="cpu"`` (the harness's
    smoke run) the host wall clock is used."""
    import time

    import torch

    fns = _as_list(fns)
    reps = max(reps, len(fns))
    calls = [fns[i % len(fns)] for i in range(reps)]

    def run_all():
        for f in calls:
            f()

    if device != "cuda":
        for f in calls[:warmup]:
            f()
        times = []
        for _ in range(trials):
            t0 = time.perf_counter()
            run_all()
            times.append((time.perf_counter() - t0) / reps)
        return statistics.median(times)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):            # warm up off the default stream (cuBLAS handles, workspaces)
        for f in (fns * warmup)[:max(warmup, len(fns))]:
            f()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    replay = run_all
    graph = None
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run_all()
        graph.replay()
        torch.cuda.synchronize()
        replay = graph.replay
        STATS["graph_timed"] += 1
    except Exception:                        # noqa: BLE001 - any capture failure: fall back to eager launches
        graph = None
        torch.cuda.synchronize()
        STATS["eager_timed"] += 1
    soak_end = time.time() + SOAK_S          # let the board's power limiter settle on this kernel's draw
    while time.time() < soak_end:
        replay()
        torch.cuda.synchronize()
    times = []
    for _ in range(trials):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    del graph
    return statistics.median(times)


def kernel_names(fn, device: str = "cuda") -> str:
    """What one call of ``fn`` ran, in order, joined by " | ": on a GPU the names of the CUDA kernels
    (and copies) the profiler records, each cut to KERNEL_NAME_CHARS; on the host the top-level
    PyTorch ops. The kernel names say which library kernel served a shape (a GEMV, a split-K GEMM
    and its reduction, PyTorch's one- or two-kernel LayerNorm), which a time alone cannot."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activity = ProfilerActivity.CUDA if device == "cuda" else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        fn()
        synchronize(device)
    if device == "cuda":
        names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    else:
        names = [e.name for e in prof.events() if e.cpu_parent is None]
    return " | ".join(n[:KERNEL_NAME_CHARS] for n in names)


def smi(fields: str = "clocks.sm,clocks.mem,power.draw,temperature.gpu") -> str:
    """One nvidia-smi reading ("" where it cannot be read): clocks and power after a part ran."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def time_wall(fn, warmup: int = 3, trials: int = 20, device: str = "cuda") -> float:
    """Median host wall-clock time of one call plus synchronize (for copies)."""
    import time

    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(trials):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_rows(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:     # power: the die's state (simhw/cost/power.py): soaked rows are steady
            writer.writerow({"power": "steady" if SOAK_S > 0 else "burst", **row})
    tmp.replace(path)


def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
