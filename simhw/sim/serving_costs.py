"""Iteration times and energy of a serving replica for sim/serving.py, from the cost model: whole
prefill and decode iterations on a grid of batch sizes and lengths, and mixed iterations of chunked
prefill (decode tokens and prompt chunks in one pass) composed from the same estimates' parts; the
KV cache's bytes per token and sequence and the pool the fullest pipeline device leaves for it."""
from __future__ import annotations

import math
from dataclasses import replace

from ..cost.estimate import OpCoster, estimate, hosts_power_w
from ..workload.spec import DecodeOptions, Mode, Workload
from .serving_types import ServingOptions


class IterationCosts:
    """(seconds, joules) of one prefill or decode iteration of a replica, from the cost model on a
    grid of batch sizes (powers of two) and lengths (powers of two), interpolated linearly."""

    def __init__(self, wl: Workload, hw):
        par = wl.parallelism
        # one replica: its tp x pp devices, no data parallelism (energy counts its devices only); with
        # expert parallelism its ep data-parallel ranks, each with 1 / ep of the sequences
        self.dp = par.ep
        self.wl, self.hw = replace(wl, devices=par.tp * par.pp * self.dp, parallelism=replace(par, dp=self.dp)), hw
        self.tp = par.tp if par.attention_dp else 1
        self._grid: dict[tuple, tuple[float, float]] = {}

    def _at(self, mode: Mode, batch: int, length: int) -> tuple[float, float]:
        key = (mode, batch, length)
        if key not in self._grid:
            self._grid[key] = self._estimate(mode, batch, length)
        return self._grid[key]

    def _workload(self, mode: Mode, batch: int, length: int) -> Workload:
        # each data-parallel rank takes its share of the sequences (the busiest rank's); DP attention:
        # whole sequences per TP rank
        b = -(-max(1, -(-batch // self.dp)) // self.tp) * self.tp
        length = max(1, int(round(length)))
        if mode is Mode.DECODE:
            return replace(self.wl, mode=mode, micro_batch=b, global_batch=b * self.dp, seq_len=length,
                           decode=replace(self.wl.decode, context_len=length, new_tokens=1, samples=1))
        return replace(self.wl, mode=mode, micro_batch=b, global_batch=b * self.dp, seq_len=length,
                       decode=DecodeOptions())

    def _estimate(self, mode: Mode, batch: int, length: int) -> tuple[float, float]:
        wl = self._workload(mode, batch, length)
        r = estimate(wl, self.hw)
        # the devices' energy; the hosts' draw is charged once for the whole run (simulate_serving)
        return r.step_time_s, r.energy_j - hosts_power_w(self.hw, wl.devices) * r.step_time_s

    def _parts_at(self, mode: Mode, batch: int, length: int) -> tuple[float, ...]:
        """(GPU seconds, attention share, head share, dynamic joules) of a whole iteration with no
        engine overheads: the op graph's attention and recurrent-scan kernels (which depend on each
        sequence's context) and its embedding / output layer (once per token) against the rest."""
        key = ("parts", mode, batch, length)
        if key not in self._grid:
            from ..workload.graph import OpKind
            from ..workload.transformer import build_graph
            wl = self._workload(mode, batch, length)
            wl = replace(wl, engine=replace(wl.engine, step_overhead_s=0.0, per_sequence_s=0.0, host_per_layer_s=0.0,
                                            per_worker_s=0.0))      # its all-reduce kernel stays
            r = estimate(wl, self.hw)
            graph = build_graph(wl, compact=True)
            coster = OpCoster(self.hw, wl)
            coster.use_step_clock(graph.ops)
            total = attn = head = 0.0
            for op in graph.ops:
                t = coster(op).time_s * op.count
                total += t
                attn += t if op.kind in (OpKind.ATTENTION, OpKind.SCAN) else 0.0
                head += t if op.layer < 0 and op.kind is not OpKind.COLLECTIVE else 0.0
            device = getattr(self.hw, "device", self.hw)
            dyn = r.energy_j - (device.busy_w * wl.devices + hosts_power_w(self.hw, wl.devices)) * r.step_time_s
            self._grid[key] = (r.step_time_s, attn / total if total else 0.0, head / total if total else 0.0, dyn)
        return self._grid[key]

    def _parts(self, mode: Mode, batch: float, length: float) -> tuple[float, ...]:
        (b0, b1), wb = _bracket(batch)
        (l0, l1), wl = _bracket(max(length, 16.0))
        t = [[self._parts_at(mode, b, n) for n in (l0, l1)] for b in (b0, b1)]
        return tuple(((1 - wb) * ((1 - wl) * t[0][0][k] + wl * t[0][1][k])
                      + wb * ((1 - wl) * t[1][0][k] + wl * t[1][1][k])) for k in range(4))

    def mixed(self, decodes: int, context: float, chunks: list[tuple[int, int]]) -> tuple[float, float]:
        """(seconds, joules) of one chunked-prefill iteration: ``decodes`` sequences at mean
        ``context`` decoding one token each, and prompt ``chunks`` of (tokens, tokens already
        cached before them) (Agrawal et al. 2024, Sarathi-Serve, arXiv 2403.02310 §4). The
        per-token ops (projections, FFN or experts, norms, collectives) run once over all the
        iteration's tokens: a prefill's of that many tokens; each sequence's attention is its
        own: the decode step's, and for a chunk of p tokens after o cached ones, a prefill's over
        the length whose causal square has as many query-key pairs, sqrt(p (2o + p)); the decode
        tokens' output layer is the decode step's. A plain decode step or a batch of fresh
        prompts is the whole iteration's estimate."""
        if not chunks:
            return self.cost(Mode.DECODE, decodes, context)
        if not decodes and all(o == 0 for _, o in chunks):
            return self.cost(Mode.PREFILL, len(chunks), sum(p for p, _ in chunks) / len(chunks))
        tokens = decodes + sum(p for p, _ in chunks)
        # with expert parallelism each of the dp ranks takes its share of the tokens and chunks, all
        # ranks in step (a rank's own load priced, every rank's energy)
        share = 1.0 / self.dp
        lin_s, lin_attn, lin_head, lin_j = self._parts(Mode.PREFILL, 1, max(1.0, tokens * share))
        gpu = lin_s * (1 - lin_attn)
        joules = lin_j * (1 - lin_attn)
        for p, o in chunks:
            s, a, _, j = self._parts(Mode.PREFILL, 1, math.sqrt(p * (2 * o + p)))
            gpu, joules = gpu + s * a * share, joules + j * a * share
        if decodes:
            s, a, h, j = self._parts(Mode.DECODE, decodes, context)
            gpu, joules = gpu + s * (a + h), joules + j * (a + h)
        from ..schedule.from_workload import serving_iteration_s
        seqs = decodes + len(chunks)
        t = serving_iteration_s(self._workload(Mode.DECODE, seqs, int(context) or 1), self.hw, gpu)
        device = getattr(self.hw, "device", self.hw)
        return t, joules + device.busy_w * self.wl.devices * t

    def host_s(self, seqs: int) -> float:
        """The engine's own host work in an iteration of ``seqs`` sequences (its fixed part and per
        sequence: cost/estimate.py EngineCosts), which one host process does serially."""
        key = ("host", seqs)
        if key not in self._grid:
            from ..cost.estimate import engine_costs
            wl = self._workload(Mode.DECODE, max(1, seqs), 1)
            self._grid[key] = engine_costs(wl, getattr(self.hw, "device", self.hw)).iteration_s(wl)
        return self._grid[key]

    def cost(self, mode: Mode, batch: float, length: float) -> tuple[float, float]:
        """Bilinear interpolation of the grid around (batch, length): (seconds, joules)."""
        (b0, b1), wb = _bracket(batch)
        (l0, l1), wl = _bracket(max(length, 16.0))
        t = [[self._at(mode, b, n) for n in (l0, l1)] for b in (b0, b1)]
        return tuple(((1 - wb) * ((1 - wl) * t[0][0][k] + wl * t[0][1][k])
                      + wb * ((1 - wl) * t[1][0][k] + wl * t[1][1][k])) for k in (0, 1))


def _bracket(x: float) -> tuple[tuple[int, int], float]:
    lo = 2 ** max(0, math.floor(math.log2(max(x, 1.0))))
    hi = lo * 2 if x > lo else lo
    return (lo, hi), (x - lo) / (hi - lo) if hi > lo else 0.0


def kv_model(wl: Workload, device: int | None = None) -> tuple[float, float]:
    """(bytes per cached token, bytes per sequence) on one device of a replica (``device``: that
    pipeline device, by the layers it holds), from two points of the memory model (the per-sequence
    part is a recurrent model's state)."""
    from ..cost.memory import kv_cache_bytes

    def kv(ctx: int) -> float:
        return kv_cache_bytes(replace(wl, mode=Mode.DECODE, micro_batch=1, global_batch=1, seq_len=ctx,
                                      decode=replace(wl.decode, context_len=ctx, new_tokens=1, samples=1)), device)
    token_bytes = (kv(4096) - kv(2048)) / 2048
    return token_bytes, max(0.0, kv(2048) - 2048 * token_bytes)


def kv_pool(wl: Workload, hw, options: ServingOptions, longest: int) -> tuple[float, float, float]:
    """(bytes per cached token, bytes per sequence, KV budget in bytes) of the device that limits a
    replica's KV cache: what the weights and the largest iteration's activations leave of each
    device's usable memory, less the shared prefix's one copy. Pipeline devices hold different
    layers, and the engine admits what its fullest device can hold (vLLM sizes the cache by the
    smallest block count of its workers); the device that holds the fewest requests of the longest
    length sets it."""
    from ..cost.memory import device_memory_breakdowns

    device = getattr(hw, "device", hw)
    usable = device.main_memory.capacity_bytes * options.kv_memory_fraction
    mems = device_memory_breakdowns(replace(wl, mode=Mode.DECODE, micro_batch=options.max_num_seqs,
                                            global_batch=options.max_num_seqs), hw)
    pools = []
    for d, mem in enumerate(mems):
        token_bytes, seq_bytes = kv_model(wl, d if len(mems) > 1 else None)
        budget = usable - mem.parameters_bytes - mem.activations_bytes - mem.logits_bytes \
            - token_bytes * options.prefix_tokens
        per_request = token_bytes * longest + seq_bytes
        pools.append((budget / per_request if per_request > 0 else math.inf, (token_bytes, seq_bytes, budget)))
    return min(pools, key=lambda p: p[0])[1]
