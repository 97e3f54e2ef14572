"""``simhw schedule WORKLOAD --hw NAME -o PLAN.yaml``: Pyomo + HiGHS schedule optimisation.

Training (pp = 1): the token-wise activation policy (keep / CPU / NVMe / recompute) -> a plan
that ``simhw simulate --plan`` replays. Training with pp > 1: layer partition, schedule and
micro-batch count. Decode: FlexGen-like placement of weights, KV cache and activations.
"""
from __future__ import annotations

from .common import add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser("schedule", help="optimise offload / recompute / pipeline / placement (Pyomo + HiGHS)")
    p.add_argument("workload")
    p.add_argument("--hw", required=True, metavar="NAME")
    p.add_argument("--model", choices=("auto", "activation", "checkpoint", "placement", "pipeline", "inference"),
                   default="auto", help="which optimisation model (auto: by the workload's mode and pp)")
    p.add_argument("--objective", choices=("time", "energy", "cost"), default="time")
    p.add_argument("--device-memory", metavar="SIZE", help='cap device memory, e.g. "40GiB"')
    p.add_argument("--host-memory", metavar="SIZE", help='cap host memory per device, e.g. "1TiB"')
    p.add_argument("--time-limit", type=float, default=30.0, metavar="S", help="solver time limit in seconds")
    p.add_argument("-o", "--output", metavar="PLAN.yaml", help="write the plan here")
    add_set_option(p)
    p.set_defaults(run=run)


def _bytes(text, flag):
    if text is None:
        return None
    from ..errors import SimhwError
    from ..units import Dim, parse_quantity
    try:
        return parse_quantity(text, Dim.BYTES, flag)
    except SimhwError as exc:
        raise SimhwError(str(exc)) from None


def run(args) -> int:
    from ..report.fmt import gib, seconds, table
    from ..spec.load import load_hw
    from ..workload.from_yaml import load_workload
    from ..workload.spec import Mode

    wl = load_workload(args.workload, args.overrides)
    hw = load_hw(args.hw)
    dev = _bytes(args.device_memory, "--device-memory")
    host = _bytes(args.host_memory, "--host-memory")
    model = args.model
    if model == "auto":
        model = "inference" if wl.mode is Mode.DECODE else "pipeline" if wl.parallelism.pp > 1 else "activation"
    if model in ("checkpoint", "placement"):
        return _chain_or_placement(model, wl, hw, dev, args)
    if model == "inference":
        from ..schedule.from_workload import decode_placement, serving_iteration_s
        import yaml
        r = decode_placement(wl, hw, dev, host, args.time_limit)
        iteration = serving_iteration_s(wl, hw, r.step_time_s)
        rows = [[k, f"{getattr(r, k).gpu:.1%}", f"{getattr(r, k).cpu:.1%}", f"{getattr(r, k).nvme:.1%}"]
                for k in ("weights", "kv_cache", "activations")]
        text = table(rows, ["data", "GPU", "CPU", "NVMe"]) + (
            f"\npredicted decode step {seconds(r.step_time_s)} on the GPU, {r.tokens_per_s:.4g} tok/s; binding: "
            f"{r.binding}\nwith the serving engine's host dispatch and per-iteration work (as simhw estimate): "
            f"{seconds(iteration)} per iteration, {r.tokens_per_s * r.step_time_s / iteration:.4g} tok/s")
        plan_text = yaml.safe_dump({"name": "placement", "version": 1, "kind": "inference-placement",
                                    **{k: {t: float(getattr(getattr(r, k), t)) for t in ("gpu", "cpu", "nvme")}
                                       for k in ("weights", "kv_cache", "activations")},
                                    "predicted": {"step_time_s": float(r.step_time_s), "tokens_per_s": float(r.tokens_per_s),
                                                  "iteration_s": float(iteration)}},
                                   sort_keys=False)
    elif model == "pipeline":
        from ..schedule.from_workload import partition_layout, pipeline_partition
        import yaml
        r = pipeline_partition(wl, hw, dev, args.time_limit)
        rows = [[f"device {d}", ", ".join(map(str, stages)), seconds(t), gib(mb)] for d, (stages, t, mb) in
                enumerate(zip(r.device_stages, r.device_time_s, r.device_memory_bytes))]
        gap = "" if r.mip_gap in (None, 0) else f", MIP gap {r.mip_gap:.2%}"
        layout = partition_layout(r, wl)
        text = (f"schedule {r.schedule.value}, {r.num_micro_batches} micro-batches, predicted step "
                f"{seconds(r.step_time_s)} ({r.status.value}{gap})\n"
                + table(rows, ["device", "virtual stages", "time / micro-batch", "memory"])
                + (f"\nas a Megatron pipeline layout (parallelism.layout): {layout}" if layout else ""))
        plan_text = yaml.safe_dump({"name": "pipeline", "version": 1, "kind": "pipeline-partition",
                                    "schedule": r.schedule.value, "micro_batches": int(r.num_micro_batches),
                                    "stage_layers": [list(map(int, s)) for s in r.stage_layers],
                                    **({"layout": layout} if layout else {}),
                                    "predicted": {"step_time_s": float(r.step_time_s)}}, sort_keys=False)
    else:
        from ..schedule.activation import schedule_activations
        from ..schedule.plan import plan_to_yaml
        r = schedule_activations(wl, hw, args.objective, dev, host, args.time_limit)
        counts: dict[str, int] = {}
        for per in r.plan.layers.values():
            for cls, pol in per.items():
                key = f"{cls}: {pol.action.value}" + (f" {pol.offload_fraction:.0%}" if pol.offload_fraction < 1 else "")
                counts[key] = counts.get(key, 0) + 1
        rows = [[k, str(v)] for k, v in sorted(counts.items())] or [["everything kept", "all"]]
        text = (table(rows, ["tensor class: decision", "layers"])
                + f"\npredicted step {seconds(r.predicted_step_s)} (LP), simulated {seconds(r.simulated_step_s)}; "
                  f"device {gib(r.device_bytes)}, host {gib(r.host_bytes)}, NVMe {gib(r.nvme_bytes)}; "
                  f"binding: {r.binding}"
                + ("" if not r.mip_gap else f"; stopped at the time limit, MIP gap {r.mip_gap:.2%}"))
        plan_text = plan_to_yaml(r.plan, {"step_time_s": r.predicted_step_s, "simulated_step_s": r.simulated_step_s})
    if args.output:
        from pathlib import Path
        from .common import write_bytes_atomic
        write_bytes_atomic(Path(args.output), plan_text.encode("utf-8"))
    write_output(text, None)
    return 0


def _chain_or_placement(model: str, wl, hw, dev, args) -> int:
    import yaml

    from ..report.fmt import gib, seconds
    from ..schedule import from_workload as fw
    if model == "checkpoint":
        r = fw.checkpoint_chain(wl, hw, dev, args.time_limit)
        text = (f"checkpoint {len(r.checkpoints)} of {wl.model.layers} layer inputs ({r.status.value}); "
                f"peak activations {gib(r.peak_memory_bytes)}, recompute {seconds(r.recompute_time_s)} per micro-batch\n"
                f"segments: {', '.join(f'{a}-{b - 1}' for a, b in r.segments) or 'none'}")
        out = {"name": "checkpoints", "version": 1, "kind": "checkpoint-chain", "checkpoints": list(map(int, r.checkpoints))}
    else:
        mip, caching = fw.memory_placement(wl, args.time_limit)
        text = (f"one layer's tensors (MEMO level 1): placed peak {gib(mip.peak_bytes)}, max live "
                f"{gib(mip.max_live_bytes)}, fragmentation {gib(mip.fragmentation_bytes)} ({mip.status.value})\n"
                f"caching allocator on the same sequence: reserved {gib(caching.reserved_peak_bytes)}, "
                f"fragmentation {gib(caching.fragmentation_bytes)}")
        out = {"name": "placement", "version": 1, "kind": "memory-placement",
               "offsets_bytes": [float(o) for o in mip.offsets_bytes]}
    if args.output:
        from pathlib import Path
        from .common import write_bytes_atomic
        write_bytes_atomic(Path(args.output), yaml.safe_dump(out, sort_keys=False).encode("utf-8"))
    write_output(text, None)
    return 0
