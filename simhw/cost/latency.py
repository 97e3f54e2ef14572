"""Memory kernels bound by load latency rather than bandwidth (Little's law).

A kernel whose threads each keep one load of ``load_bytes`` in flight (one scalar element per
thread per loop iteration, no vector loads, e.g. vLLM's 2023 ``rms_norm_kernel`` and
``act_and_mul_kernel`` that sarathi-serve and vidur run) can have at most
``SMs x threads_per_sm x load_bytes`` bytes in flight, so it streams at most that much per memory
latency: concurrency = bandwidth x latency (Little 1961; the CUDA best-practices guide's
"memory-level parallelism"). Each element then costs ``rounds`` dependent round trips: one per
element it reads, twice over for a row-wise norm (a statistics pass, then a normalising pass
that re-reads its row). Vectorised kernels (PyTorch's elementwise and norm kernels) keep far more
in flight and stay bandwidth-bound; they carry no ``load_bytes``.

Two shape keys describe kernels that do not fill the device or chain their loads: ``threads``, the
threads the kernel runs when fewer than the SMs hold (a one-block reduction), and ``rounds``, the
dependent round trips per element when given (e.g. 2 for a gather whose address is itself loaded).

Under load the two limits add rather than overlap: each load waits its unloaded round trip
(``memory.*.latency``, a pointer chase) and then its share of the memory system's service time, so
a closed queue of C bytes in flight moves B bytes at 1 / (latency / C + 1 / bandwidth), and the
kernel takes its bandwidth time plus its latency-bound time (a closed queueing network with one
delay and one service centre, as in Lazowska et al. 1984, "Quantitative System Performance").
cost/roofline.py adds
:func:`load_latency_time_s` to the op's memory time. With the A100's round trip at the Hopper
parts' measured 351 ns (the earlier, unverified 600 ns had absorbed the queueing), vidur's A100
RMSNorm rows go from 10.8% / 34.3% (median / p90) to 10.2% / 25.6% and its SiLU-and-mul, RoPE and
add rows from 15.1% / 36.6% to 15.8% / 34.9%. Unfitted, vidur's H100 sample
(validate/data/published/vidur-h100-sample.csv, 351 ns measured) goes from 14.2% / 36.0% to
12.9% / 33.0% overall, but not evenly (medians): its RoPE rows from 36% fast to 6% fast, its RMSNorm
rows from 12% fast to 14% slow and its SiLU-and-mul rows of 1,024-4,096 tokens from 15% fast to
43% slow (on the A100, 8% fast to 10% slow). How many loads one thread keeps in flight differs per
kernel (SiLU-and-mul's gate and up loads are independent, RoPE also loads its cos / sin cache), and
``rounds`` counts one round trip per element read for all of them: not modelled per kernel.

An input still in L2 (cost/roofline.py fresh_l2_bytes) does not shorten these round trips here:
vidur's A100 RMSNorm, SiLU-and-mul and RoPE rows read tensors the kernel before them wrote, and
pricing those loads at the L2's latency (l2_latency_fraction) made them far too fast at the median
of their 5-50 us rows. What limits one scalar load in flight per thread is then the DRAM round
trip.
"""
from __future__ import annotations

from ..spec.model import DeviceSpec
from ..workload.graph import Op, OpKind


def load_latency_time_s(op: Op, hw: DeviceSpec, load_bytes: float) -> float:
    """Seconds a latency-bound elementwise, norm or softmax kernel needs to stream ``op``'s inputs
    with one ``load_bytes`` load in flight per resident thread (0 when it has no element count)."""
    elements = float(op.shape.get("elements", 0.0)) if op.shape else 0.0
    e = op.dtype.bytes
    if elements <= 0 or load_bytes <= 0 or e <= 0:
        return 0.0
    rounds = op.shape.get("rounds", 0.0)
    if rounds <= 0:
        rounds = op.input_bytes / (elements * e) * (2.0 if op.kind is OpKind.NORM else 1.0)
    threads = max(hw.compute_units, 1) * hw.efficiency.threads_per_sm
    threads = min(threads, op.shape.get("threads", threads))
    return rounds * elements * e / (threads * load_bytes) * hw.main_memory.latency_s
