"""Request-level serving simulation: arrivals, continuous batching, KV-cache admission, and
prefill / decode disaggregation, over iteration times from the cost model.

A *replica* is one copy of the model on tp x pp devices (the workload's parallelism), or with
expert parallelism on its ep x tp x pp devices, ep data-parallel ranks that each serve their own
sequences (max_num_seqs each) and step together through the experts spread over them (wide-EP
serving: SGLang's, DeepSeek's); the workload's ``devices`` give the replica count. Requests arrive (Poisson at ``rate_per_s``, or
from a trace), go to the replica with the fewest outstanding requests, and are served as vLLM's
scheduler serves them (Kwon et al. 2023, "Efficient Memory Management for Large Language Model
Serving with PagedAttention", §4; Yu et al. 2022, Orca, iteration-level scheduling): an idle
replica first runs a prefill iteration over the waiting requests, first come first served, up to
``max_batch_tokens`` prompt tokens and ``max_num_seqs`` sequences in all, admitting a request only
while its KV cache fits what the weights leave of ``kv_memory_fraction`` of device memory (below);
otherwise it runs one decode iteration over every running
sequence. A prefill yields each request's first token; each decode iteration one more (the
expected accepted tokens per step with speculative decoding). With ``chunked_prefill`` (vLLM V1,
SGLang; Agrawal et al. 2024, Sarathi-Serve, arXiv 2403.02310) every iteration decodes all running
sequences and fills the rest of ``max_batch_tokens`` with prompt chunks.

Disaggregated serving (``prefill_replicas`` > 0; Splitwise, Patel et al. 2024, arXiv 2311.18677;
DistServe, Zhong et al. 2024, arXiv 2401.09670): those replicas only prefill, then send each
request's KV cache to a decode replica over the network (each TP rank its shard, in parallel);
the decode replicas only decode.

The KV cache grows as tokens come (``kv_on_demand``, vLLM's block manager): a request is admitted
when its prompt fits, and when a decode step's tokens do not, the newest running sequence is
preempted and later prefilled again with the tokens it had emitted (vLLM's recompute preemption).
With ``kv_swap_bytes`` of host memory per device, a preempted sequence's cache is swapped out over
the host link instead, while it fits, and swapped back in when it is readmitted (vLLM's swap
preemption); the iteration after each swap waits for the transfer. With ``kv_on_demand=False``, and
on disaggregated replicas, each request reserves its whole cache at admission and nothing is
preempted.

Iteration times and energy come from ``cost.estimate`` (engine overheads included) on a grid of
batch sizes and lengths, interpolated linearly in between; mixed iterations are composed from the
same estimates' parts (sim/serving_costs.py). Approximations: a prefill batch is priced at its
mean prompt length; a decode batch at its mean context; KV is counted in tokens, not blocks.

A pipelined replica (pp > 1) keeps up to pp iterations in flight, as vLLM's pipeline parallelism
does: pp virtual engines, each scheduling its own sequences (up to max_num_seqs / pp) and one
iteration at a time, take turns; an iteration starts once the previous one has cleared the first
stage (1 / pp of its GPU time, the stages taken as balanced) and the engine's host has scheduled
it. A sequence's tokens still come one pass through every stage apart.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..errors import WorkloadError
from ..workload.spec import Mode, Workload
from .requests import Request
from ..cost.estimate import hosts_power_w
from .serving_costs import IterationCosts, kv_model, kv_pool
from .serving_types import RequestResult, ServingOptions, ServingResult

__all__ = ["RequestResult", "ServingOptions", "ServingResult", "kv_model", "simulate_serving"]


@dataclass
class _Seq:
    req: Request
    index: int
    kv_tokens: int
    produced: float = 0.0
    first_s: float = math.nan
    reserved_bytes: float = 0.0    # KV held for it on its replica
    cached: int = 0                # prompt tokens prefilled so far
    prefilled: bool = False
    prompt_len: int = 0            # tokens to prefill: the prompt, and after a preemption the tokens emitted so far
    group: int = 0                 # the replica's virtual engine it runs in (one per pipeline stage)
    swapped_bytes: float = 0.0     # its KV held in host memory while it waits (0: not swapped out)


@dataclass
class _Replica:
    prefill: bool
    decode: bool
    waiting: deque = field(default_factory=deque)
    running: list = field(default_factory=list)
    kv_used_bytes: float = 0.0
    flying: set = field(default_factory=set)   # virtual engines with an iteration running (up to pp)
    next_group: int = 0            # the virtual engine whose turn it is
    next_start_s: float = 0.0      # when its first stage is free for the next iteration
    busy_until_s: float = 0.0      # when the last iteration started ends
    wake_pending: bool = False
    host_kv_bytes: float = 0.0     # swapped-out KV in host memory, per device
    swap_s: float = 0.0            # swap transfers the next iteration waits for
    busy_s: float = 0.0            # time with at least one iteration running
    energy_j: float = 0.0

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)


def simulate_serving(wl: Workload, hw, requests: tuple[Request, ...],
                     options: ServingOptions = ServingOptions()) -> ServingResult:
    """Serve ``requests`` with ``wl``'s model and parallelism on ``hw`` (see module docstring)."""
    from ..cost.comm import host_link_bytes_per_s, pick_link
    from ..spec.model import NodeSpec
    from ..workload.graph import LinkScope

    if wl.mode is Mode.TRAIN:
        raise WorkloadError(f"{wl.name}: serve simulates inference; the workload's mode is train. Set mode: "
                            f"decode (or prefill).")
    if not requests:
        raise WorkloadError("serve: no requests to simulate.")
    if wl.parallelism.cp > 1:
        raise WorkloadError(f"serve: context parallelism across replicas (cp = {wl.parallelism.cp}) is not modelled; "
                            f"use cp: 1 (simhw estimate prices one such step).")
    par = wl.parallelism
    # expert parallelism makes one replica of its ep data-parallel ranks (wide-EP serving, each rank
    # with its own sequences and scheduler, the experts spread over them, every iteration in step)
    ranks = par.ep
    per_replica = par.tp * par.pp * ranks
    replicas = max(1, wl.devices // per_replica)
    n_pre = options.prefill_replicas
    if n_pre and not 0 < n_pre < replicas:
        raise WorkloadError(f"serve: {n_pre} prefill replicas leave no decode replica of the {replicas} that "
                            f"{wl.devices} devices make at tp x pp x ep = {per_replica}; use fewer, or more devices.")
    device = hw.device if isinstance(hw, NodeSpec) else hw
    costs = IterationCosts(wl, hw)
    prefix = options.prefix_tokens
    if prefix and any(r.prompt_tokens <= prefix for r in requests):
        raise WorkloadError(f"serve: the shared prefix ({prefix} tokens) must be shorter than every prompt; the "
                            f"shortest has {min(r.prompt_tokens for r in requests)}.")
    longest = max(r.prompt_tokens + r.output_tokens for r in requests) - prefix
    token_bytes, seq_bytes, kv_budget_bytes = kv_pool(wl, hw, options, longest)
    if kv_budget_bytes < token_bytes * longest + seq_bytes:
        raise WorkloadError(
            f"serve: on {hw.name} one replica (tp x pp x ep = {per_replica}) keeps {kv_budget_bytes / 2**30:.1f} GiB per device "
            f"for the KV cache after the weights, but the longest request ({longest} tokens beyond any shared "
            f"prefix) needs "
            f"{(token_bytes * longest + seq_bytes) / 2**30:.2f} GiB; add tensor parallelism or memory.")
    link = pick_link(hw, LinkScope.INTER, 2 * per_replica)
    pp = par.pp
    pool_bytes = kv_budget_bytes * ranks             # the replica's KV cache: each sequence on one of its ranks
    swap_pool = options.kv_swap_bytes * ranks         # host memory for swapped-out KV, per device x ranks
    host_bw = host_link_bytes_per_s(hw)               # each device moves its own shard
    batch_tokens = options.max_batch_tokens * ranks   # each rank's scheduler fills its own iteration
    group_seqs = math.ceil(options.max_num_seqs * ranks / pp)   # each virtual engine's share of the sequences
    static_w = device.busy_w * per_replica     # the replica's draw while it runs (IterationCosts charges it per iteration)
    step_tokens = wl.decode.tokens_per_step
    reps = [_Replica(prefill=i < n_pre or not n_pre, decode=i >= n_pre) for i in range(replicas)]
    # a request's own cached turns (cached_tokens) are its KV too; only the shared prefix is held once
    seqs = [_Seq(r, i, r.prompt_tokens + r.output_tokens - prefix, prompt_len=r.prompt_tokens,
                 cached=max(prefix, r.cached_tokens)) for i, r in enumerate(requests)]
    on_demand = options.kv_on_demand and not n_pre
    preempted = swapped = 0
    done: dict[int, float] = {}
    events: list = []
    counter = 0
    decode_batches: list[int] = []

    def push(t: float, kind: str, rep: int, payload) -> None:
        nonlocal counter
        heapq.heappush(events, (t, counter, kind, rep, payload))
        counter += 1

    def least_loaded(prefill: bool) -> int:
        pool = [i for i, r in enumerate(reps) if (r.prefill if prefill else r.decode)]
        return min(pool, key=lambda i: (reps[i].load, i))

    def need(rep: _Replica, s: _Seq) -> float:
        """KV bytes a sequence takes at admission: its prompt and first token when the cache grows on
        demand (a swapped-out sequence: its cache as it left); else its prompt on a prefill-only
        replica, prompt + output elsewhere."""
        if s.swapped_bytes:
            return s.swapped_bytes
        if on_demand:
            return token_bytes * (s.prompt_len - prefix + 1) + seq_bytes
        return token_bytes * (s.req.prompt_tokens - prefix if not rep.decode else s.kv_tokens) + seq_bytes

    def fits(rep: _Replica, s: _Seq) -> bool:
        return rep.kv_used_bytes + need(rep, s) <= pool_bytes

    def admit(rep: _Replica, s: _Seq) -> None:
        s.reserved_bytes = need(rep, s)
        rep.kv_used_bytes += s.reserved_bytes

    def release(rep: _Replica, s: _Seq) -> None:
        rep.kv_used_bytes -= s.reserved_bytes
        s.reserved_bytes = 0.0

    def plan(rep: _Replica) -> tuple[int, list, list] | None:
        """The next iteration: a virtual engine of the replica with no iteration in flight (one per
        pipeline stage, each with its own sequences, as vLLM runs pipeline parallelism; one without
        it), its decoding sequences and prompt chunks (sequence, tokens)."""
        for k in range(pp):
            g = (rep.next_group + k) % pp
            if g in rep.flying:
                continue
            decodes, chunks = plan_group(rep, g)
            if decodes or chunks:
                rep.next_group = (g + 1) % pp
                return g, decodes, chunks
        return None

    def plan_group(rep: _Replica, g: int) -> tuple[list, list]:
        members = (lambda: rep.running) if pp == 1 else (lambda: [s for s in rep.running if s.group == g])  # noqa: E731

        def join() -> _Seq:
            s = rep.waiting.popleft()
            s.group = g
            admit(rep, s)
            rep.running.append(s)
            if s.swapped_bytes:         # swapped back in over the host link before the next iteration
                rep.swap_s += s.swapped_bytes / host_bw
                rep.host_kv_bytes -= s.swapped_bytes
                s.swapped_bytes = 0.0
            return s
        if rep.decode and not rep.prefill:       # a decode replica admits transferred sequences
            while rep.waiting and len(members()) < group_seqs and fits(rep, rep.waiting[0]):
                join()
        decodes = [s for s in members() if s.prefilled] if rep.decode else []
        if on_demand:       # room for this step's tokens: evict the newest sequences (vLLM's recompute preemption)
            while decodes and rep.kv_used_bytes + token_bytes * step_tokens * len(decodes) > pool_bytes \
                    and len(members()) > 1:
                preempt(rep, members()[-1])
                decodes = [s for s in members() if s.prefilled]
        chunks: list = []
        if not rep.prefill:
            return decodes, chunks
        room = batch_tokens - (len(decodes) if options.chunked_prefill else 0)
        if options.chunked_prefill:               # unfinished prompts first, then new ones
            for s in members():
                if not s.prefilled and room > 0:
                    chunks.append((s, min(s.prompt_len - s.cached, room)))
                    room -= chunks[-1][1]
        while rep.waiting and len(members()) < group_seqs and room > 0 and fits(rep, rep.waiting[0]):
            s = rep.waiting[0]
            if s.swapped_bytes:                         # its cache comes back whole: it decodes next
                join()
                continue
            if not options.chunked_prefill and chunks and s.prompt_len - s.cached > room:
                break
            join()
            fresh = s.prompt_len - s.cached             # the shared prefix is already cached
            chunks.append((s, min(fresh, room) if options.chunked_prefill else fresh))
            room -= chunks[-1][1]
        if chunks and not options.chunked_prefill:
            decodes = []                          # prefills run first, as their own iteration
        return decodes, chunks

    def preempt(rep: _Replica, s: _Seq) -> None:
        nonlocal preempted, swapped
        held = s.reserved_bytes
        release(rep, s)
        rep.running.remove(s)
        if s.prefilled and held and rep.host_kv_bytes + held <= swap_pool:
            # swap out over the host link: the next iteration waits for it; the sequence keeps its progress
            s.swapped_bytes = held
            rep.host_kv_bytes += held
            rep.swap_s += held / host_bw
            swapped += 1
        else:
            s.cached, s.prefilled, s.prompt_len = prefix, False, s.req.prompt_tokens + int(s.produced)
        rep.waiting.appendleft(s)
        preempted += 1

    def start(i: int, now: float) -> None:
        """Start the replica's next iteration if it has one: when its first pipeline stage is free
        and fewer than pp iterations run (one at a time without pipeline parallelism)."""
        rep = reps[i]
        if len(rep.flying) >= pp:
            return
        if now < rep.next_start_s:
            if not rep.wake_pending:
                rep.wake_pending = True
                push(rep.next_start_s, "wake", i, None)
            return
        picked = plan(rep)
        if picked is None:
            return
        g, decodes, chunks = picked
        ctx = sum(s.req.prompt_tokens + s.produced for s in decodes) / len(decodes) if decodes else 0.0
        dur, joules = costs.mixed(len(decodes), ctx, [(c, s.cached) for s, c in chunks])
        if rep.swap_s:          # KV swapped out or in for this iteration (vLLM's swap before the model step)
            dur, joules = dur + rep.swap_s, joules + static_w * rep.swap_s
            rep.swap_s = 0.0
        if decodes:
            decode_batches.append(len(decodes))
        for s in decodes:
            if on_demand:                           # the step's tokens take their cache slots when scheduled
                s.reserved_bytes += token_bytes * step_tokens
                rep.kv_used_bytes += token_bytes * step_tokens
        # the devices' static draw counts once over time with any iteration running (pipelined
        # iterations overlap); the dynamic energy is each iteration's own
        end = now + dur
        rep.busy_s += max(0.0, end - max(now, rep.busy_until_s))
        rep.busy_until_s = max(rep.busy_until_s, end)
        rep.energy_j += joules - static_w * dur
        # the next iteration may start once this one's GPU pass has cleared the first of pp balanced
        # stages and the engine's host process has done this one's scheduling and sampling, which
        # it does serially for every batch in flight
        host = costs.host_s(len(decodes) + len(chunks)) if pp > 1 else 0.0
        rep.flying.add(g)
        rep.next_start_s = now + max((dur - host) / pp, host)
        push(end, "iteration", i, (g, decodes, chunks))
        if len(rep.flying) < pp and not rep.wake_pending:    # another virtual engine may start then
            rep.wake_pending = True
            push(rep.next_start_s, "wake", i, None)

    def complete(i: int, now: float, g: int, decodes: list, chunks: list) -> None:
        rep = reps[i]
        rep.flying.discard(g)
        for s in decodes:
            s.produced += step_tokens
        for s, c in chunks:
            s.cached += c
            if s.cached >= s.prompt_len:          # the prefill's last chunk yields the next token
                if math.isnan(s.first_s):
                    s.first_s = now
                s.produced, s.prefilled = s.produced + 1.0, True
        still = []
        for s in rep.running:
            if s.prefilled and s.produced >= s.req.output_tokens:
                release(rep, s)
                done[s.index] = now
            elif s.prefilled and not rep.decode:  # send the KV cache to a decode replica; free it here
                release(rep, s)
                j = least_loaded(prefill=False)
                kv_bytes = token_bytes * (s.req.prompt_tokens - prefix) + seq_bytes   # decode replicas hold the prefix
                push(now + link.latency_s + kv_bytes / link.bandwidth_bytes_per_s, "transferred", j, s)
            else:
                still.append(s)
        rep.running = still
        start(i, now)

    for s in seqs:
        push(s.req.arrival_s, "arrive", -1, s)
    while events:
        now, _, kind, i, payload = heapq.heappop(events)
        if kind == "iteration":
            complete(i, now, *payload)
            continue
        if kind == "wake":
            reps[i].wake_pending = False
            start(i, now)
            continue
        j = least_loaded(prefill=True) if kind == "arrive" else i
        reps[j].waiting.append(payload)
        start(j, now)
    results = tuple(RequestResult(s.req.arrival_s, s.first_s, done[s.index], s.req.prompt_tokens,
                                  s.req.output_tokens) for s in seqs)
    span = max(r.done_s for r in results) - min(r.arrival_s for r in results)
    mean_len = float(np.mean([s.kv_tokens for s in seqs]))
    return ServingResult(
        hardware=hw.name, workload=wl.name, replicas=replicas, prefill_replicas=n_pre,
        devices_per_replica=per_replica, requests=results,
        kv_capacity_tokens=pool_bytes / (token_bytes + seq_bytes / mean_len) if token_bytes + seq_bytes > 0 else math.inf,
        mean_decode_batch=float(np.mean(decode_batches)) if decode_batches else 0.0, preemptions=preempted,
        swaps=swapped,
        busy_share=sum(r.busy_s for r in reps) / (replicas * span) if span > 0 else 0.0,
        # a replica's devices draw busy power while any iteration runs, idle power otherwise
        energy_j=sum(r.energy_j + static_w * r.busy_s + device.idle_w * per_replica * max(0.0, span - r.busy_s)
                     for r in reps)
        + hosts_power_w(hw, replicas * per_replica) * span)
