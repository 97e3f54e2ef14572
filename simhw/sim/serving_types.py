"""The values of the serving simulation (sim/serving.py): its options, and the per-request and
whole-run results with their summary statistics (TTFT, TPOT and latency percentiles, throughput,
energy per token)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ServingOptions:
    max_num_seqs: int = 256            # sequences a replica runs at once (vLLM's max_num_seqs)
    max_batch_tokens: int = 8192       # tokens per iteration: prompt tokens of a prefill, or with chunked
                                       # prefill decode tokens and chunks (vLLM's max_num_batched_tokens)
    prefill_replicas: int = 0          # disaggregated: replicas that only prefill (0: every replica does both)
    kv_memory_fraction: float = 0.9    # of device memory, for weights, activations and KV (gpu_memory_utilization)
    chunked_prefill: bool = False      # each iteration decodes every running sequence and fills the rest of
                                       # max_batch_tokens with prompt chunks (vLLM V1, SGLang; Sarathi-Serve)
    prefix_tokens: int = 0             # leading prompt tokens every request shares (a system prompt), kept cached
                                       # once per replica and not prefilled again (vLLM's automatic prefix caching,
                                       # SGLang's RadixAttention)
    kv_on_demand: bool = True          # KV grows as tokens come and the newest sequence is preempted (and later
                                       # recomputed) when it runs out, as vLLM's block manager does; False: each
                                       # request reserves prompt + output at admission (disaggregated replicas do)
    kv_swap_bytes: float = 0.0         # host memory per device for preempted sequences' KV: a preempted sequence
                                       # is swapped out over the host link and back in, not recomputed, while it
                                       # fits (vLLM's swap preemption; 0: recompute only)


@dataclass(frozen=True)
class RequestResult:
    arrival_s: float
    first_token_s: float
    done_s: float
    prompt_tokens: int
    output_tokens: int

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> float:
        return self.done_s - self.arrival_s

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (0 for one-token outputs)."""
        return (self.done_s - self.first_token_s) / (self.output_tokens - 1) if self.output_tokens > 1 else 0.0


@dataclass(frozen=True)
class ServingResult:
    hardware: str
    workload: str
    replicas: int
    prefill_replicas: int
    devices_per_replica: int
    requests: tuple[RequestResult, ...]
    kv_capacity_tokens: float          # per replica that decodes, at the mean request's length
    mean_decode_batch: float
    busy_share: float                  # replicas' busy time over (replicas x makespan)
    preemptions: int = 0               # sequences evicted when the KV cache ran out (recomputed later)
    swaps: int = 0                     # ... of which swapped out to host memory rather than recomputed
    energy_j: float = 0.0              # from the first arrival to the last token: the iterations' energy, the
                                       # devices' idle draw in between, and the hosts' draw throughout

    @property
    def makespan_s(self) -> float:
        return max(r.done_s for r in self.requests) - min(r.arrival_s for r in self.requests)

    def summary(self) -> dict:
        tokens = sum(r.output_tokens for r in self.requests)
        out = {"requests": len(self.requests), "makespan_s": self.makespan_s,
               "output_tokens_per_s": tokens / self.makespan_s,
               "requests_per_s": len(self.requests) / self.makespan_s,
               "energy_per_output_token_j": self.energy_j / tokens,
               "average_power_w": self.energy_j / self.makespan_s if self.makespan_s > 0 else 0.0}
        for name in ("ttft_s", "tpot_s", "e2e_s"):
            values = np.array([getattr(r, name) for r in self.requests])
            for q in (50, 90, 99):
                out[f"{name[:-2]}_p{q}_s"] = float(np.percentile(values, q))
            out[f"{name[:-2]}_mean_s"] = float(values.mean())
        return out

    def to_dict(self) -> dict:
        return {"schema": "simhw.serve/1", "hardware": self.hardware, "workload": self.workload,
                "replicas": self.replicas, "prefill_replicas": self.prefill_replicas,
                "devices_per_replica": self.devices_per_replica, "kv_capacity_tokens": self.kv_capacity_tokens,
                "mean_decode_batch": self.mean_decode_batch, "busy_share": self.busy_share,
                "preemptions": self.preemptions, "swaps": self.swaps, **self.summary()}
