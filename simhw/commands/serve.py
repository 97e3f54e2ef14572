"""``simhw serve WORKLOAD --hw NAME [--rate R] [--requests N | --trace CSV]``: request-level serving
simulation (continuous batching, KV admission, prefill/decode disaggregation; sim/serving.py)."""
from __future__ import annotations

from .common import add_format_option, add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a stream of requests: TTFT, time per output token, throughput",
                       description="Simulate serving requests with the workload's model and parallelism: "
                                   "arrivals, continuous batching, KV-cache admission, optional prefill/decode "
                                   "disaggregation; iteration times from the cost model. The workload's devices "
                                   "give the replicas (devices / (tp x pp)).")
    p.add_argument("workload", help="a serving workload YAML (mode: decode or prefill)")
    p.add_argument("--hw", action="append", required=True, metavar="NAME",
                   help="hardware: a shipped name or a spec YAML; repeat to compare")
    p.add_argument("--rate", type=_nonneg, default=1.0, metavar="REQ_PER_S",
                   help="Poisson arrival rate in requests per second (0: all at once; default 1)")
    p.add_argument("--requests", type=_count, default=200, metavar="N", help="requests to simulate (default 200)")
    p.add_argument("--prompt-tokens", type=_count, default=None, metavar="N",
                   help="prompt length (default: the workload's decode.context_len, else seq_len)")
    p.add_argument("--output-tokens", type=_count, default=None, metavar="N",
                   help="output length (default: the workload's decode.new_tokens)")
    p.add_argument("--range-ratio", type=_ratio, default=0.0, metavar="R",
                   help="draw each request's prompt and output lengths uniformly from L (1 - R) to L (1 + R), as "
                        "vLLM's benchmark_serving --random-range-ratio (default 0: fixed lengths)")
    p.add_argument("--cached-tokens", type=_nonneg_int, default=0, metavar="N",
                   help="leading tokens of each prompt already in the KV cache: a conversation's earlier turns, "
                        "kept by prefix caching, so only the rest is prefilled (default 0)")
    p.add_argument("--trace", default=None, metavar="CSV",
                   help="requests from a CSV (prompt_tokens, output_tokens, optional arrival_s and cached_tokens) "
                        "instead of --rate / --requests / lengths")
    p.add_argument("--prefill-replicas", type=_nonneg_int, default=0, metavar="N",
                   help="disaggregated serving: N replicas only prefill and send the KV cache to the others")
    p.add_argument("--chunked-prefill", action="store_true",
                   help="each iteration decodes every running sequence and fills the rest of --max-batch-tokens "
                        "with prompt chunks (vLLM V1, SGLang); default: prefills run as their own iterations first")
    p.add_argument("--prefix-tokens", type=_nonneg_int, default=0, metavar="N",
                   help="leading prompt tokens every request shares (a system prompt), cached once per replica "
                        "and not prefilled again (automatic prefix caching)")
    p.add_argument("--kv-swap", default=None, metavar="SIZE",
                   help="host memory per device for preempted sequences' KV (e.g. 200GB): they are swapped out "
                        "over the host link and back in instead of recomputed (vLLM's swap preemption)")
    p.add_argument("--reserve-kv", action="store_true",
                   help="each request reserves its whole KV cache (prompt + output) at admission; default: the "
                        "cache grows as tokens come and the newest sequence is preempted when it runs out (vLLM)")
    p.add_argument("--max-seqs", type=_count, default=256, metavar="N", help="sequences per replica (default 256)")
    p.add_argument("--max-batch-tokens", type=_count, default=8192, metavar="N",
                   help="prompt tokens per prefill iteration (default 8192)")
    p.add_argument("--memory-fraction", type=_fraction, default=0.9, metavar="F",
                   help="share of device memory for weights, activations and KV cache (default 0.9)")
    p.add_argument("--slo-ttft", default=None, metavar="TIME",
                   help="with --slo-tpot: find the goodput, the highest rate at which 90%% of requests get their "
                        "first token within TIME (e.g. 2s) and later tokens within --slo-tpot each (DistServe)")
    p.add_argument("--slo-tpot", default=None, metavar="TIME", help="time per output token target (e.g. 100ms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the arrival process")
    add_format_option(p, choices=("table", "json"))
    add_set_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    from ..report.fmt import table
    from ..sim.requests import poisson_requests, read_request_trace
    from ..sim.serving import ServingOptions, simulate_serving
    from ..spec.load import load_hw
    from ..workload.from_yaml import load_workload

    wl = load_workload(args.workload, args.overrides)
    hws = [load_hw(name) for name in args.hw]
    prompt = args.prompt_tokens or wl.decode.context_len or wl.seq_len
    output = args.output_tokens or wl.decode.new_tokens
    options = ServingOptions(
        max_num_seqs=args.max_seqs, max_batch_tokens=args.max_batch_tokens,
        prefill_replicas=args.prefill_replicas, kv_memory_fraction=args.memory_fraction,
        chunked_prefill=args.chunked_prefill, kv_on_demand=not args.reserve_kv, prefix_tokens=args.prefix_tokens,
        kv_swap_bytes=_swap_bytes(args.kv_swap))
    if args.slo_ttft or args.slo_tpot:
        return _goodput(args, wl, hws, options, prompt, output)
    requests = read_request_trace(args.trace) if args.trace else \
        poisson_requests(args.requests, args.rate, prompt, output, args.seed, args.cached_tokens, args.range_ratio)
    results = [simulate_serving(wl, hw, requests, options) for hw in hws]
    if args.format == "json":
        body = results[0].to_dict() if len(results) == 1 else {"schema": "simhw.serve/1",
                                                                 "results": [r.to_dict() for r in results]}
        write_output(json.dumps(body, indent=2), args.output)
        return 0
    columns = [_rows(r) for r in results]
    rows = [[label] + [col[i][1] for col in columns] for i, (label, _) in enumerate(columns[0])]
    write_output(f"{wl.name} served\n" + table(rows, ["metric"] + [r.hardware for r in results], width=200),
                 args.output)
    return 0


def _rows(res) -> list[tuple[str, str]]:
    """(metric, value) lines of one simulation."""
    from ..report.fmt import pct, seconds, si

    s = res.summary()
    layout = f"{res.replicas} x {res.devices_per_replica} devices"
    if res.prefill_replicas:
        layout += f" ({res.prefill_replicas} prefill, {res.replicas - res.prefill_replicas} decode)"
    rows = [("replicas", layout), ("requests", str(s["requests"])), ("makespan", seconds(s["makespan_s"])),
            ("output throughput", si(s["output_tokens_per_s"], "tok/s")),
            ("request throughput", f"{s['requests_per_s']:.3g} req/s")]
    for name, label in (("ttft", "time to first token"), ("tpot", "time per output token"), ("e2e", "request latency")):
        rows += [(f"{label} p{q}", seconds(s[f"{name}_p{q}_s"])) for q in (50, 90, 99)]
    return rows + [("energy per output token", si(s["energy_per_output_token_j"], "J")),
                   ("average power (devices and hosts)", si(s["average_power_w"], "W")),
                   ("mean decode batch", f"{res.mean_decode_batch:.1f}"),
                   ("KV capacity per replica", f"{res.kv_capacity_tokens:,.0f} tokens"),
                   ("preemptions (KV cache full)", str(res.preemptions)
                    + (f", {res.swaps} swapped to host" if res.swaps else "")),
                   ("replicas busy", pct(res.busy_share))]


def _goodput(args, wl, hws, options, prompt: int, output: int) -> int:
    import json

    from ..errors import WorkloadError
    from ..report.fmt import seconds, table
    from ..sim.goodput import max_goodput
    from ..units import Dim, parse_quantity

    if not (args.slo_ttft and args.slo_tpot) or args.trace:
        raise WorkloadError("serve: the goodput search takes both --slo-ttft and --slo-tpot, and Poisson arrivals "
                            "(not --trace).")
    ttft = parse_quantity(args.slo_ttft, Dim.SECONDS, "--slo-ttft")
    tpot = parse_quantity(args.slo_tpot, Dim.SECONDS, "--slo-tpot")
    found = [(hw, max_goodput(wl, hw, prompt, output, ttft, tpot, options, requests=args.requests, seed=args.seed,
                              cached_tokens=args.cached_tokens, range_ratio=args.range_ratio)) for hw in hws]
    if args.format == "json":
        out = [{"schema": "simhw.goodput/1", "hardware": hw.name, "workload": wl.name, "ttft_slo_s": ttft,
                "tpot_slo_s": tpot, "goodput_requests_per_s": g.rate_per_s, "per_device": g.per_device,
                "attainment": g.attainment, "saturation_requests_per_s": g.saturation_rate_per_s,
                "at_goodput": g.result.to_dict() if g.result else None} for hw, g in found]
        write_output(json.dumps(out[0] if len(out) == 1 else {"schema": "simhw.goodput/1", "results": out}, indent=2),
                     args.output)
        return 0
    rows = []
    for hw, g in found:
        s = g.result.summary() if g.result else None
        rows.append([hw.name, f"{g.rate_per_s:.3g} req/s" if g.result else "none", f"{g.per_device:.3g}",
                     f"{g.saturation_rate_per_s:.3g} req/s", f"{g.attainment:.1%}" if g.result else "-",
                     f"{seconds(s['ttft_p90_s'])} / {seconds(s['tpot_p90_s'])}" if s else "-"])
    head = (f"{wl.name}: goodput of {prompt}-token prompts, {output}-token outputs, for TTFT ≤ {seconds(ttft)} and "
            f"TPOT ≤ {seconds(tpot)} on 90% of requests\n")
    write_output(head + table(rows, ["hardware", "goodput", "per device", "saturation", "attainment",
                                     "TTFT / TPOT p90"], width=200), args.output)
    return 0


def _number(text: str, what: str, ok) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _nonneg(text: str) -> float:
    import math
    return _number(text, "a rate ≥ 0", lambda v: math.isfinite(v) and v >= 0)


def _count(text: str) -> int:
    return int(_number(text, "a whole number ≥ 1", lambda v: v >= 1 and v == int(v)))


def _nonneg_int(text: str) -> int:
    return int(_number(text, "a whole number ≥ 0", lambda v: v >= 0 and v == int(v)))


def _fraction(text: str) -> float:
    return _number(text, "a fraction in (0, 1]", lambda v: 0 < v <= 1)


def _ratio(text: str) -> float:
    return _number(text, "a ratio from 0 to below 1", lambda v: 0 <= v < 1)


def _swap_bytes(text: str | None) -> float:
    """--kv-swap SIZE as bytes (one strict unit parser, as the specs')."""
    if text is None:
        return 0.0
    from ..units import Dim, parse_quantity
    return parse_quantity(text, Dim.BYTES, "--kv-swap")
