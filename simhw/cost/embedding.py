"""PyTorch's embedding backward on CUDA (``aten::embedding_dense_backward``): the kernels it runs and
why it takes 1.5-5.7x the time of its bytes (validate/fit_embedding.py --check).

The gradient of a [vocab, hidden] table from ``tokens`` rows of output gradient
(aten/src/ATen/native/cuda/Embedding.cu, EmbeddingBackwardKernel.cu; PyTorch 2.x):

- up to 3072 tokens: the table is zeroed, then ``embedding_backward_feature_kernel`` runs
  ceil(hidden / 32) blocks of 32 x 32 threads, each walking every token in chunks of 32 rows
  (load the ids and gradient rows, then read-modify-write the table rows: two dependent round
  trips per chunk);
- more tokens: the ids are radix-sorted (CUB onesweep, 8 bits a pass; the kernel names show eight
  passes, the full 64 bits of the ids, each after a memset),
  the table is zeroed, a handful of small kernels find the segments of equal ids and split them
  into partial segments of at most 10 tokens, ``compute_grad_weight`` sums each partial segment's
  gradient rows into an FP32 buffer (one thread per feature, blocks of min(hidden, 1024) threads,
  each waiting on the segment's offsets, ids and gradient values: ``PARTIAL_ROUND_TRIPS`` dependent
  round trips) and ``sum_and_scatter`` adds each segment's partials into its table row
  (``SCATTER_ROUND_TRIPS`` round trips).

Those two kernels run one short chain per block and hold two 1024-thread blocks per SM, so they
are bound by waves x chain (Little's law), not by bytes: on the H100, 16384 tokens of a
32000 x 4096 table take 1.03 ms where the bytes take 0.2 ms (validate/data/h100-2026-11-26/
embedding.csv). Token ids are taken as uniform over the vocabulary (the expected number of distinct
ids, vocab x (1 - exp(-tokens / vocab))), as in simhw's measurements; real text repeats ids more
(fewer, longer segments), which this does not model.
"""
from __future__ import annotations

import math

from ..spec.model import DeviceKind, DeviceSpec
from ..workload.graph import Op, OpKind
from .rowwise import blocks_per_sm

SMALL_TOKENS = 3072         # Embedding.cu: num_indices <= 3072 (and no scale_grad_by_freq) takes the feature kernel
ROWS_PER_PARTIAL = 10       # EmbeddingBackwardKernel.cu NROWS_PER_THREAD
PARTIAL_ROUND_TRIPS = 7.0        # F (validate/fit_embedding.py, H100): dependent round trips of a compute_grad_weight
                            # block (segment and partial offsets, ids, then up to 10 gradient rows)
SCATTER_ROUND_TRIPS = 3.0        # counted: a sum_and_scatter block loads its segment's partial range, the partial
                            # sums, then writes the table row
_SORT_PASSES = 8            # DeviceRadixSortOnesweepKernel launches (validate/data/*/embedding.csv kernel names)
_KERNELS = 31               # all launches of the sorted path (arange, memsets, sort, fill, unique_by_key, segment
                            # counts and scans, compute_grad_weight, sum_and_scatter), as the kernel names list them


def embedding_backward_time_s(tokens: float, vocab: float, hidden: float, esize: int, hw: DeviceSpec,
                              partial_round_trips: float = PARTIAL_ROUND_TRIPS) -> tuple[float, int]:
    """(seconds without launches, kernels launched) of embedding_dense_backward (module docstring);
    ``partial_round_trips``: compute_grad_weight's chain (validate/fit_embedding.py varies it)."""
    eff = hw.efficiency
    bw = hw.main_memory.bandwidth_bytes_per_s * eff.elementwise_memory_fraction
    latency = hw.main_memory.latency_s
    sms = max(1, hw.compute_units)
    table = vocab * hidden * esize
    zero = table / (hw.main_memory.bandwidth_bytes_per_s * eff.write_fraction)
    grads = tokens * hidden * esize
    if tokens <= SMALL_TOKENS:
        blocks = math.ceil(hidden / 32)                     # 32 x 32 threads each, walking every token
        chunks = math.ceil(tokens / 32)
        waves = max(1.0, blocks / (sms * blocks_per_sm(hw, 1024, 32)))
        walk = waves * chunks * 2 * latency
        return zero + max(walk, (grads + 2 * tokens * hidden * esize) / bw), 2
    distinct = vocab * (1.0 - math.exp(-tokens / vocab)) if vocab > 0 else tokens
    partials = distinct + max(0.0, tokens - distinct) / ROWS_PER_PARTIAL
    threads = min(1024, 32 * math.ceil(hidden / 32))
    per_row = math.ceil(hidden / threads)                   # blocks per partial segment / segment
    slots = sms * blocks_per_sm(hw, threads, 32)
    sort = _SORT_PASSES * (16 * tokens / bw + latency)       # key + value of each token per pass
    partial = max(1.0, partials * per_row / slots) * partial_round_trips * latency + (grads + partials * hidden * 4) / bw
    scatter = max(1.0, distinct * per_row / slots) * SCATTER_ROUND_TRIPS * latency + (partials * hidden * 4 + distinct * hidden * esize) / bw
    return zero + sort + partial + scatter, _KERNELS


def is_dense_backward(op: Op, hw: DeviceSpec) -> bool:
    """Whether ``op`` is an embedding backward this model prices: shape keys ``tokens``, ``vocab``,
    ``hidden`` and ``dense_backward`` (trace/memops.py embedding_backward), on a GPU."""
    s = op.shape
    return (op.kind is OpKind.EMBEDDING and bool(s) and bool(s.get("dense_backward")) and hw.kind is DeviceKind.GPU
            and hw.compute_units > 0 and all(s.get(key, 0) > 0 for key in ("tokens", "vocab", "hidden")))
