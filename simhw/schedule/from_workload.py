"""Feed the inference-placement and pipeline-partition models from a workload and a machine.

- Decode: FlexGen-like placement (inference.py): weight, KV-cache and activation bytes per device
  from the memory model, the compute time of one decode step from the cost model without its
  memory traffic (the LP charges HBM, PCIe and NVMe traffic itself), capacities from the spec.
- Training with pp > 1: contiguous stages (pipeline_partition.py) over the embedding, the
  transformer layers and the vocabulary layer (Vocabulary Parallelism, Yeung et al. 2024, §7d:
  the output layer costs more than a transformer layer when the vocabulary is large), per-sample
  times from the cost model and activation bytes from the memory model.
"""
from __future__ import annotations

from dataclasses import replace

from ..cost.estimate import OpCoster, engine_costs
from ..cost.memory import (activation_bytes_per_layer, layer_params_per_device, memory_breakdown,
                           recurrent_state_bytes, saved_tensor_bytes, static_bytes_per_param)
from ..spec.model import NodeSpec
from ..workload.graph import Phase
from ..workload.spec import Workload
from ..workload.transformer import build_graph


def decode_placement(wl: Workload, hw, device_memory_bytes: float | None = None,
                     host_memory_bytes: float | None = None, time_limit_s: float = 30.0):
    from ..cost.comm import host_link_bytes_per_s
    from ..sim.run import memory_pools
    from . import inference as inf

    device = hw.device if isinstance(hw, NodeSpec) else hw
    mem = memory_breakdown(wl, hw)
    coster = OpCoster(hw, wl)
    graph = build_graph(wl, compact=True)
    coster.use_step_clock(graph.ops)
    compute_s = ops_s = 0.0
    for op in graph.ops:
        c = coster(op)
        compute_s += (c.compute_s + device.efficiency.launch_s) * op.count
        ops_s += c.time_s * op.count
    dev_cap, host_cap, nvme_cap = memory_pools(hw, wl, device_memory_bytes, host_memory_bytes)
    drive = hw.drives[0] if isinstance(hw, NodeSpec) and hw.drives else None
    nvme_bw = 1.0
    if drive is not None:
        from ..devices.storage import throughput_bytes_per_s
        nvme_bw = throughput_bytes_per_s(drive, 4 * 2**20) * hw.drive_count / hw.device_count
    seqs = wl.micro_batch * wl.decode.samples * wl.decode.tokens_per_step   # tokens a step yields
    state = recurrent_state_bytes(wl)
    data = inf.InferenceData(
        weights_bytes=mem.parameters_bytes, kv_cache_bytes=mem.kv_cache_bytes,
        activation_bytes=mem.activations_bytes + mem.logits_bytes, compute_time_s=compute_s,
        tokens_per_step=seqs, num_layers=wl.model.layers, gpu_capacity_bytes=dev_cap,
        cpu_capacity_bytes=host_cap if host_cap != float("inf") else 1e18,
        hbm_bandwidth_bytes_per_s=device.main_memory.bandwidth_bytes_per_s * device.efficiency.memory_fraction,
        pcie_bandwidth_bytes_per_s=host_link_bytes_per_s(hw), nvme_capacity_bytes=nvme_cap,
        nvme_bandwidth_bytes_per_s=nvme_bw,
        # each step appends one token's K and V and rewrites the recurrent layers' states
        kv_write_bytes_per_step=(mem.kv_cache_bytes - state) / max(1, wl.decode.context_len + wl.decode.new_tokens)
        + state,
        gpu_ops_time_s=ops_s)
    return inf.solve(data, time_limit_s=time_limit_s)


def memo_plan(wl: Workload, hw, host_memory_bytes: float | None = None):
    """MEMO's plan for ``wl`` on ``hw`` (Zhao et al. 2024 §4.1, seed-targets §2c): offload every
    layer's input and attention output, a fraction alpha of the other saved tensors' tokens (the
    rest recomputed), the last two layers kept; alpha the largest whose transfer hides behind a
    layer's forward over the host link and whose bytes fit host memory (tokenwise.py
    memo_alpha_closed_form), 0 when not even the fixed part fits."""
    from ..cost.comm import host_link_bytes_per_s
    from ..sim.run import layer_costs, memory_pools
    from ..workload.spec import Recompute
    from .plan import builtin_plan
    from .tokenwise import MemoLPData, memo_alpha_closed_form

    per_class = saved_tensor_bytes(wl, recompute=Recompute.NONE)
    others = sum(v for k, v in per_class.items() if k not in ("input", "attn_out", "scores"))
    _, host_cap, _ = memory_pools(hw, wl, None, host_memory_bytes)
    data = MemoLPData(input_bytes=per_class.get("input", 0.0), attn_bytes=per_class.get("attn_out", 0.0),
                      others_bytes=others, pcie_bandwidth_bytes_per_s=host_link_bytes_per_s(hw),
                      layer_forward_time_s=layer_costs(wl, hw).fwd_s, num_layers=wl.model.layers,
                      host_capacity_bytes=min(host_cap, 1e30))
    alpha = memo_alpha_closed_form(data) if others > 0 else 1.0
    return builtin_plan("memo", max(0.0, min(1.0, alpha)))


def serving_iteration_s(wl: Workload, hw, gpu_step_s: float) -> float:
    """One serving iteration around a GPU step of ``gpu_step_s``: the engine's host dispatch of the
    layers overlaps it (the iteration waits for the slower, plus one link of the other), then its
    per-iteration and per-sequence work (cost/estimate.py's serving rule, the workload's engine:
    block over the spec's engine_*)."""
    engine = engine_costs(wl, hw.device if isinstance(hw, NodeSpec) else hw)
    host, layers = engine.host_per_layer_s, wl.model.layers
    return max(gpu_step_s, layers * host) + min(host, gpu_step_s / layers) + engine.iteration_s(wl)


def pipeline_partition(wl: Workload, hw, device_memory_bytes: float | None = None, time_limit_s: float = 30.0):
    from . import pipeline_partition as pp

    par, m = wl.parallelism, wl.model
    device = hw.device if isinstance(hw, NodeSpec) else hw
    one = replace(wl, micro_batch=1, parallelism=replace(par, pp=1, layout=""))
    coster = OpCoster(hw, one)
    graph = build_graph(one, compact=True)
    coster.use_step_clock(graph.ops)
    layer_s = embed_s = head_s = 0.0
    for op in graph.ops:
        if op.phase in (Phase.OPTIMIZER,):
            continue
        t = coster(op).time_s * op.count
        if op.layer >= 0:
            layer_s += t            # compact graph: one op stands for all layers (count = layers)
        elif op.name.startswith("embedding"):
            embed_s += t
        else:
            head_s += t
    layer_s /= m.layers
    per_param = sum(static_bytes_per_param(wl))            # parameter + gradient + optimizer state, ZeRO-sharded
    expert = m.expert_params() / par.ep / par.tp if par.ep > 1 else 0.0   # a routed expert's ZeRO group is dp / ep
    layer_static = (layer_params_per_device(wl) - expert) * per_param \
        + expert * sum(static_bytes_per_param(wl, par.dp // par.ep * par.cp))
    act = activation_bytes_per_layer(one)
    layers = [pp.PipelineLayer("embedding", embed_s, m.embedding_params() / par.tp * per_param, act / 34)]
    layers += [pp.PipelineLayer(f"layer{i}", layer_s, layer_static, act) for i in range(m.layers)]
    layers.append(pp.PipelineLayer("vocabulary", head_s, m.head_params() / par.tp * per_param
                                   + (m.vocab * m.hidden / par.tp * per_param if m.tied_embeddings else 0), act / 17))
    cap = device_memory_bytes or device.main_memory.capacity_bytes
    counts = tuple(sorted({c for c in (par.pp, 2 * par.pp, 4 * par.pp, wl.microbatches) if c <= wl.global_batch // par.dp}))
    data = pp.PipelineData(layers=tuple(layers), num_stages=par.pp, global_batch_samples=wl.global_batch // par.dp,
                           device_capacity_bytes=cap, micro_batch_counts=counts or (par.pp,),
                           interleave_chunks=par.interleave if par.interleave > 1 else 2)   # the workload's own v
    per_candidate = max(5.0, time_limit_s / (len(data.micro_batch_counts) * len(data.schedules)))
    return pp.solve(data, time_limit_s=per_candidate, mip_gap=1e-3)


def layer_tensor_lifetimes(wl: Workload, layers: int = 1):
    """Tensor lifetimes of ``layers`` transformer layers for one micro-batch, forward then backward.

    Step k of the forward produces saved class k (cost/memory.py order) plus a transient output
    freed one step later; the backward frees the classes in reverse and makes a gradient buffer of
    the layer's input size at each of its steps. Returns (TensorLifetime tuple, events for the
    caching-allocator model in the same order).
    """
    from ..cost.memory import saved_tensor_bytes
    from .placement import TensorLifetime

    per_class = [(c, b) for c, b in saved_tensor_bytes(wl).items() if b > 0]
    grad = per_class[0][1]
    tensors, events, t = [], [], 0
    for layer in range(layers):
        for c, b in per_class:
            tensors.append([f"L{layer}.{c}", b, t, None])
            tensors.append([f"L{layer}.{c}.tmp", b, t, t + 1])
            t += 1
    for layer in reversed(range(layers)):
        for c, b in reversed(per_class):
            tensors.append([f"L{layer}.{c}.grad", grad, t, t + 1])
            for item in tensors:
                if item[0] == f"L{layer}.{c}":
                    item[3] = t + 1
            t += 1
    lifetimes = tuple(TensorLifetime(n, float(b), s, e) for n, b, s, e in tensors)
    for step in range(t + 1):
        for n, b, s, e in tensors:
            if e == step:
                events.append(("free", n))
        for n, b, s, e in tensors:
            if s == step:
                events.append(("alloc", n, int(b)))
    return lifetimes, events


def memory_placement(wl: Workload, time_limit_s: float = 10.0):
    """MEMO §2d level 1 on one layer's tensors vs the caching allocator on the same sequence."""
    from ..sim.allocator import simulate_allocator
    from . import placement as pl

    tensors, events = layer_tensor_lifetimes(wl)
    mip = pl.solve(pl.PlacementData(tensors), time_limit_s=time_limit_s)
    caching = simulate_allocator(events)
    return mip, caching


def checkpoint_chain(wl: Workload, hw, budget_bytes: float | None = None, time_limit_s: float = 30.0):
    """Chen et al. 2016 (seed-targets §8): which layer inputs to keep for a chain of the model's layers."""
    from ..cost.memory import activation_bytes_per_layer
    from ..sim.run import layer_costs
    from . import checkpoint as ck

    costs = layer_costs(wl, hw)
    per_layer = activation_bytes_per_layer(wl, recompute=None)
    data = ck.ChainData(output_bytes=(per_layer,) * wl.model.layers, forward_time_s=(costs.fwd_s,) * wl.model.layers,
                        memory_budget_bytes=budget_bytes)
    return ck.solve(data, time_limit_s=time_limit_s)


def partition_layout(result, wl: Workload) -> str:
    """The Megatron pipeline layout (workload/layout.py) of a pipeline partition's virtual stages,
    for the 1F1B and interleaved schedules (a V shape's chunks fold back and have none): its chain
    is the embedding (index 0), the layers and the output layer (the last), and the MTP modules run
    with the loss."""
    from .pipeline_partition import PipelineSchedule
    from ..workload.layout import format_layout

    if result.schedule not in (PipelineSchedule.ONE_F_ONE_B, PipelineSchedule.INTERLEAVED):
        return ""
    head = wl.model.layers + 1
    chunks = [(0 in s, sum(1 for i in s if 0 < i < head), wl.mtp_modules if head in s else 0, head in s)
              for s in result.stage_layers]
    return format_layout(chunks)
