"""Board power under steady load: nvidia-smi sampled every 50 ms while the GPU idles, runs a long
bf16 GEMM, streams HBM (device-to-device copy) and idles again.

The spec's energy constants come from it as measured facts: idle draw; the sustained clock and board
power of a power-limited GEMM (hence the energy per FLOP through the DVFS model of
simhw/cost/estimate.py); the draw of an HBM stream at full clock (hence the energy per byte moved).
Writes ``power_samples.csv`` (t_s, power_w, sm_clock_mhz, mem_clock_mhz, temperature_c),
``power_phases.csv`` (phase, start_s, end_s, work, unit, rate) and ``power_bursts.csv`` (the GEMM's
rate in bursts of 5 ms to 1 s after 1.5 s idle: how long the power limiter takes to act). A
causal SDPA phase gives FlashAttention's draw per FLOP beside the GEMM's.
"""
from __future__ import annotations

import csv
import subprocess
import time
from pathlib import Path

FIELDS = "power.draw.instant,clocks.sm,clocks.mem,temperature.gpu"
FALLBACK_FIELDS = "power.draw,clocks.sm,clocks.mem,temperature.gpu"


def _sampler(lines: list) -> tuple[subprocess.Popen, str]:
    """Start nvidia-smi reporting every 50 ms (instantaneous power where the driver has it); a thread
    appends (host time, line) to ``lines`` as each arrives."""
    import threading

    for fields in (FIELDS, FALLBACK_FIELDS):
        probe = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                               capture_output=True, text=True, timeout=20)
        if probe.returncode == 0 and "N/A" not in probe.stdout.split(",")[0] and "Field" not in probe.stdout:
            break
    proc = subprocess.Popen(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits", "-lms", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def pump():
        for line in proc.stdout:
            lines.append((time.time(), line))

    threading.Thread(target=pump, daemon=True).start()
    return proc, fields


def _run_for(seconds: float, step, sync) -> int:
    """Call ``step`` back to back for about ``seconds`` (synchronising every 8 calls); return the count."""
    count, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        for _ in range(8):
            step()
        count += 8
        sync()
    return count


def measure(out_dir: Path, seconds: float = 4.0, burst_sweep: bool = True) -> list[dict]:
    import torch

    out_dir = Path(out_dir)
    raw: list = []
    proc, fields = _sampler(raw)
    sync = torch.cuda.synchronize
    phases = []
    t_origin = time.time()

    def phase(name, secs, step=None, work_per_call=0.0, unit=""):
        start = time.time()
        n = _run_for(secs, step, sync) if step else (time.sleep(secs) or 0)
        end = time.time()
        phases.append(dict(phase=name, start_s=start - t_origin, end_s=end - t_origin, work=n * work_per_call,
                           unit=unit, rate=n * work_per_call / (end - start) if n else 0.0))

    try:
        time.sleep(1.0)
        phase("idle_before", 2.0)
        n = 8192
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        phase("gemm_8192_bf16", seconds, lambda: torch.mm(a, b), 2.0 * n ** 3, "FLOP")
        bursts = _bursts(torch, lambda: torch.mm(a, b), 2.0 * n ** 3) if burst_sweep else []
        del a, b
        if burst_sweep:                          # FlashAttention forward: its draw per FLOP against the GEMM's
            bh, s_len, heads, d = 2, 8192, 32, 128
            q, k, v = (torch.randn(bh, heads, s_len, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            sdpa = torch.nn.functional.scaled_dot_product_attention
            time.sleep(1.0)
            phase("sdpa_causal_8192_bf16", seconds, lambda: sdpa(q, k, v, is_causal=True),
                  4.0 * bh * heads * s_len * s_len * d * 0.5, "FLOP")
            del q, k, v
        time.sleep(1.0)
        x = torch.empty(1 << 31, dtype=torch.uint8, device="cuda").random_()
        y = torch.empty_like(x)
        phase("hbm_copy_2GiB", seconds, lambda: y.copy_(x), 2.0 * x.numel(), "B")   # bytes read + written
        del x, y
        time.sleep(1.0)
        phase("idle_after", 2.0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    samples = []
    for stamp, line in raw:
        parts = [p.strip() for p in line.split(",")]
        try:
            samples.append(dict(t_s=stamp - t_origin, power_w=float(parts[0]), sm_clock_mhz=float(parts[1]),
                                mem_clock_mhz=float(parts[2]), temperature_c=float(parts[3])))
        except (ValueError, IndexError):
            continue
    _write(out_dir / "power_samples.csv", samples, ["t_s", "power_w", "sm_clock_mhz", "mem_clock_mhz", "temperature_c"])
    _write(out_dir / "power_phases.csv", phases, ["phase", "start_s", "end_s", "work", "unit", "rate"])
    if bursts:
        _write(out_dir / "power_bursts.csv", bursts, ["burst_s", "calls", "elapsed_s", "rate"])
        for r in bursts:
            print(f"  burst {r['burst_s'] * 1e3:6.0f} ms: {r['rate']:.4g} FLOP/s")
    for p in phases:   # a one-line summary per phase: median power and clock over its second half
        mid = (p["start_s"] + p["end_s"]) / 2
        inside = sorted(s["power_w"] for s in samples if mid <= s["t_s"] <= p["end_s"])
        clocks = sorted(s["sm_clock_mhz"] for s in samples if mid <= s["t_s"] <= p["end_s"])
        if inside:
            p["median_power_w"] = inside[len(inside) // 2]
            p["median_sm_clock_mhz"] = clocks[len(clocks) // 2]
    print(f"power: {fields}; {len(samples)} samples")
    for p in phases:
        print(f"  {p['phase']:16s} rate {p['rate']:.4g} {p['unit']}/s  power {p.get('median_power_w', 0):.0f} W  "
              f"sm clock {p.get('median_sm_clock_mhz', 0):.0f} MHz")
    return phases


BURSTS_S = (0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _bursts(torch, step, work_per_call: float, rest_s: float = 1.5) -> list[dict]:
    """Rate of back-to-back GEMM bursts of each length in BURSTS_S, each after ``rest_s`` of idle
    (the power limiter's averaging window lets a short burst run above the steady-state clock).
    Timed with CUDA events around the whole burst."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        step()
    end.record()
    end.synchronize()
    per_call = start.elapsed_time(end) / 3e3       # seconds, at whatever clock the chip was at
    rows = []
    for burst in BURSTS_S:
        time.sleep(rest_s)
        calls = max(1, round(burst / per_call))
        start.record()
        for _ in range(calls):
            step()
        end.record()
        end.synchronize()
        elapsed = start.elapsed_time(end) / 1e3
        rows.append(dict(burst_s=burst, calls=calls, elapsed_s=elapsed, rate=calls * work_per_call / elapsed))
    return rows


def _write(path: Path, rows: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
