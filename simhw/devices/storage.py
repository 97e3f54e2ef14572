"""NVMe and flash throughput as a function of chunk size and queue depth, from the drive's spec.

Model (Little's law over a drive with internal parallelism):
- one I/O of ``c`` bytes occupies the drive's internal pipeline for ``c / seq_bw + overhead_s``,
  where ``overhead_s = 1 / iops_4k - 4096 / seq_bw`` is the per-command cost implied by the
  datasheet's 4 KiB random IOPS (clamped at 0): saturated throughput is ``c / (c / seq_bw + overhead_s)``;
- with ``q`` commands in flight and a device latency ``L`` each command takes ``L + c / seq_bw``,
  so throughput is at most ``q · c / (L + c / seq_bw)``;
- the drive delivers the smaller of the two. Large chunks (MB-sized activation offloads) run at the
  sequential bandwidth; 4 KiB random reads at low queue depth are latency-bound.
Inputs come from the spec's ``extra:`` block (``seq_read``, ``seq_write``, ``rand_read_iops_4k``,
``rand_write_iops_4k``, ``queue_depth``) and ``memory.flash.latency``. Sources: the drives' spec
sheets (hwspecs/*.yaml); the queueing argument is Little's law (Little 1961).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import SpecError
from ..spec.model import DeviceSpec

_4K = 4096.0


class IoDir(Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class DriveModel:
    seq_bytes_per_s: float
    overhead_s: float
    latency_s: float
    queue_depth: float


def drive_model(drive: DeviceSpec, direction: IoDir = IoDir.READ) -> DriveModel:
    x = drive.extra
    main = drive.main_memory if drive.memory else None
    seq = x.get("seq_read" if direction is IoDir.READ else "seq_write") or (main.bandwidth_bytes_per_s if main else 0.0)
    if not seq:
        raise SpecError(f"{drive.name}: a drive needs extra.seq_read/seq_write or memory bandwidth.")
    iops = x.get("rand_read_iops_4k" if direction is IoDir.READ else "rand_write_iops_4k", 0.0)
    overhead = max(0.0, 1.0 / iops - _4K / seq) if iops else 0.0
    latency = main.latency_s if main and main.latency_s else 0.0
    return DriveModel(seq, overhead, latency, float(x.get("queue_depth", 32.0)))


def throughput_bytes_per_s(drive: DeviceSpec, chunk_bytes: float, queue_depth: float | None = None,
                           direction: IoDir = IoDir.READ) -> float:
    """Bytes/s the drive sustains for ``chunk_bytes`` I/Os at ``queue_depth`` commands in flight."""
    if chunk_bytes <= 0:
        raise ValueError("chunk_bytes must be positive")
    d = drive_model(drive, direction)
    q = d.queue_depth if queue_depth is None else queue_depth
    transfer = chunk_bytes / d.seq_bytes_per_s
    saturated = chunk_bytes / (transfer + d.overhead_s)
    if d.latency_s > 0:
        return min(saturated, q * chunk_bytes / (d.latency_s + transfer))
    return saturated


def transfer_time_s(drive: DeviceSpec, nbytes: float, chunk_bytes: float = 4 * 2**20, queue_depth: float | None = None,
                    direction: IoDir = IoDir.READ, drives: int = 1) -> float:
    """Seconds to move ``nbytes`` in ``chunk_bytes`` I/Os striped over ``drives`` drives."""
    if nbytes <= 0:
        return 0.0
    bw = throughput_bytes_per_s(drive, min(chunk_bytes, nbytes), queue_depth, direction) * max(drives, 1)
    return nbytes / bw
