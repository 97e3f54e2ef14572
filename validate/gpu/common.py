"""Shared helpers for the GPU measurement scripts: environment record, timing, CSV rows.

Every script writes rows in simhw's measurement CSV (simhw/validation/schema.py): ``kind``, the
shape columns, ``measured_s`` and ``source``/``label``. Kernel times come from CUDA events around
``reps`` back-to-back launches after ``warmup`` launches (median of ``trials`` such windows), so
launch overhead is amortised like in the public sets (``timing=kernel``).
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
           "reads", "writes", "timing", "pinned", "source", "label", "gpu")


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
        try:
            import subprocess

            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,power.limit",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            env["nvidia_smi"] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return env


def synchronize(device: str = "cuda") -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_kernel(fn, warmup: int = 5, reps: int = 20, trials: int = 5, device: str = "cuda") -> float:
    """Median over ``trials`` of the mean time of ``reps`` back-to-back calls of ``fn`` (seconds):
    CUDA events on a GPU; host wall clock on ``device="cpu"`` (the harness's smoke run)."""
    import time

    import torch

    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(trials):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / reps)
        else:
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


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


def write_rows(path: Path, rows: list[dict]) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    tmp.replace(path)


def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
