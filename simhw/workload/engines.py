"""Named serving engines: the overheads a workload's ``engine:`` block can name instead of numbers.

An iteration of a serving engine (cost/estimate.py) takes
``step_overhead + per_worker x (TP x PP - 1) + max(GPU time, layers x host_per_layer)
+ min(host_per_layer, GPU time / layers) + per_sequence x sequences`` (a layer starts once
dispatched and once the one before it ends: one link of the faster chain shows). ``all_reduce``
names the tensor-parallel all-reduce's kernel inside an NVLink node: ``custom`` for engines with
their own one-/two-shot kernel (vLLM's, TensorRT-LLM's), priced by cost/comm.py
custom_all_reduce_time_s up to 8 MiB, ``nccl`` otherwise. Each profile
below was fitted once on the end-to-end rows named with it (validate/REPORT.md gives the
errors); the overheads are host-side software costs, so a profile carries over to other GPUs
(unverified there). ``engine: vllm-v1`` in a workload, or
``--set engine=vllm-v1``; ``engine: {preset: vllm-v1, per_sequence: 100 us}`` starts from a profile
and replaces some of its values.
"""
from __future__ import annotations

from types import MappingProxyType

ENGINES = MappingProxyType({
    # Splitwise's engine (Mutinifni/splitwise-sim perf_model.csv, DGX-A100): eager PyTorch, the host
    # dispatching every layer; the shipped GPU specs carry these values as their defaults
    "splitwise-eager": MappingProxyType({"step_overhead": "11 ms", "per_sequence": "0.27 ms",
                                         "host_per_layer": "0.42 ms", "per_worker": "0 s", "all_reduce": "nccl"}),
    # vLLM 0.5.4 as ML.ENERGY leaderboard v2 ran it: CUDA graphs for decode (no host floor), one
    # worker process per GPU fed by the driver every iteration
    "vllm-0.5.4": MappingProxyType({"step_overhead": "11 ms", "per_sequence": "0.33 ms",
                                    "host_per_layer": "0 s", "per_worker": "9 ms", "all_reduce": "custom"}),
    # a current vLLM (V1 engine, 2025) as LLM-Inference-Bench ran generate(): CUDA graphs, light scheduler,
    # each step's inputs handed to every tensor-parallel worker process (per_worker)
    "vllm-v1": MappingProxyType({"step_overhead": "0.1 ms", "per_sequence": "80 us",
                                 "host_per_layer": "0 s", "per_worker": "0.4 ms", "all_reduce": "custom"}),
    # TensorRT-LLM as LLM-Inference-Bench ran it (C++ runtime, in-flight batching, CUDA graphs, one
    # MPI rank per GPU)
    "trt-llm": MappingProxyType({"step_overhead": "0.1 ms", "per_sequence": "25 us",
                                 "host_per_layer": "0 s", "per_worker": "0.2 ms", "all_reduce": "custom"}),
    # GPU time only: kernel-level comparisons, or an engine whose overheads are modelled elsewhere
    "none": MappingProxyType({"step_overhead": "0 s", "per_sequence": "0 s", "host_per_layer": "0 s",
                              "per_worker": "0 s", "all_reduce": "nccl"}),
})
