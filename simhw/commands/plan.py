"""``simhw plan WORKLOAD --hw NAME``: the fastest, cheapest or least-energy parallel layout."""
from __future__ import annotations

from .common import add_format_option, add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser("plan", help="search parallel layouts (tp, pp, cp, ep, micro-batch, ZeRO, recompute)",
                       description="Cost every parallel layout of a workload on one machine that fits in device "
                                   "memory (tensor, pipeline, context and expert parallelism, the pipeline "
                                   "schedule, and in training the micro-batch, ZeRO stage and recompute) and rank "
                                   "them by time, cost or energy per token. The workload's model, batch, sequence "
                                   "length and devices stay as given (--set devices=N to change them).")
    p.add_argument("workload", help="workload YAML")
    p.add_argument("--hw", action="append", required=True, metavar="NAME",
                   help="hardware: a shipped name or a spec YAML path; repeat to rank layouts across machines")
    p.add_argument("--objective", choices=("time", "cost", "energy"), default="time",
                   help="rank by device-seconds, cloud dollars or joules per token (default: time)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows to show (default 10)")
    p.add_argument("--max-step-time", metavar="TIME",
                   help='keep layouts whose step is at most this, e.g. "50 ms" (a decode iteration: the time per '
                        'output token)')
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="plan each value of a workload field too and rank them together, e.g. "
                        "--vary precision=none,fp8-current,nvfp4 (repeat for a grid)")
    p.add_argument("--tp-overlap", action="store_true",
                   help="layouts with tp > 1 overlap their tensor-parallel collectives with the GEMMs "
                        "(parallelism.tp_overlap: Megatron-LM --tp-comm-overlap, async TP)")
    p.add_argument("--each", action="store_true",
                   help="show the best layout of each machine and --vary combination (instead of the overall best)")
    p.add_argument("--batches", metavar="B1,B2,...",
                   help="serving: sequences per replica to try (default: the workload's micro_batch), e.g. "
                        "1,8,32,128")
    add_set_option(p)
    add_format_option(p)
    p.set_defaults(run=run)


_SHORT = {"parallelism.tp": "tp", "parallelism.pp": "pp", "parallelism.cp": "cp", "parallelism.ep": "ep",
          "parallelism.dp": "dp", "parallelism.attention_dp": "DP attn", "parallelism.schedule": "schedule",
          "micro_batch": "micro", "memory.zero_stage": "ZeRO", "memory.recompute": "recompute",
          "memory.offload_layers": "offloaded"}


_ABSENT = {"memory.offload_layers": 0}       # what a candidate without the setting runs
_HIDE_UNUSED = {"parallelism.cp": 1, "parallelism.ep": 1, "parallelism.attention_dp": False}   # columns shown
                                                                                            # only when used


def run(args) -> int:
    from ..errors import SimhwError

    if args.top < 1:
        raise SimhwError(f"--top {args.top}: give at least 1 row.")
    limit = None
    if args.max_step_time is not None:
        from ..units import Dim, parse_quantity
        limit = parse_quantity(args.max_step_time, Dim.SECONDS, "--max-step-time")     # (positive, or an error)
    vary, runs, failures = _plans(args, _batches(args.batches), limit)
    objective = runs[0][1].objective
    pool = ((r.ranked[0], label) for label, r in runs) if args.each else \
        ((c, label) for label, r in runs for c in r.ranked)
    shown = sorted(pool, key=lambda cl: cl[0].score(objective))[:args.top]
    several = len({dict(lb)["hardware"] for lb, _ in runs}) > 1
    label_keys = ["hardware"] * several + [k for k, _ in vary]
    keys = [k for k in _SHORT if any(k in dict(c.settings) for c, _ in shown)
            and not (k in _HIDE_UNUSED and all(dict(c.settings).get(k) == _HIDE_UNUSED[k] for c, _ in shown))]
    if args.format == "json":
        import json
        out = [dict(r.to_dict(args.top), **{k: v for k, v in label if k != "hardware"}) for label, r in runs]
        write_output(json.dumps(out[0] if len(out) == 1 else {"schema": "simhw.plan/1", "plans": out}, indent=2),
                     args.output)
        return 0
    if args.format == "csv":
        import csv
        import io
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(label_keys + [_SHORT[k] for k in keys]
                        + ["step_time_s", "tokens_per_s", "mfu", "peak_memory_bytes", "energy_j", "cost_usd"])
        for c, label in shown:
            s, r = dict(c.settings), c.result
            writer.writerow([dict(label)[k] for k in label_keys] + [s.get(k, _ABSENT.get(k, "")) for k in keys]
                            + [r.step_time_s, r.tokens_per_s, r.mfu, r.memory.peak_bytes, r.energy_j, r.cost_usd])
        write_output(buf.getvalue(), args.output)
        return 0
    write_output(_table(shown, runs, label_keys, keys, limit, failures), args.output)
    return 0


def _plans(args, batches, limit):
    """(the parsed --vary, [(label: ((hardware, name), (vary key, value), ...), PlanResult)] for every
    machine and --vary combination, the errors of those where nothing fits when others fit)."""
    import itertools

    from ..cost.plan import plan
    from ..cost.sweep import HW_PREFIX, parse_vary
    from ..errors import SimhwError

    vary = parse_vary(args.vary) if args.vary else []
    if any(k.startswith(HW_PREFIX) for k, _ in vary):
        raise SimhwError("plan --vary: workload fields only (precision, model, seq_len, ...); to vary a spec "
                         "field, give a spec YAML per value with --hw, or use simhw sweep.")
    runs, failures = [], []
    combos = list(itertools.product(*(values for _, values in vary)))
    for name in dict.fromkeys(args.hw):
        for combo in combos:
            given = tuple(zip((k for k, _ in vary), combo))
            try:
                result = plan(args.workload, name, list(args.overrides) + [f"{k}={v}" for k, v in given],
                              args.objective, serving_batches=batches, max_step_s=limit, tp_overlap=args.tp_overlap)
            except SimhwError as exc:      # one machine or combination too small: named under the ranking
                if len(args.hw) * len(combos) == 1:
                    raise
                failures.append(f"on {name}{''.join(f', {k}={v}' for k, v in given)}: {exc}")
                continue
            runs.append(((("hardware", name), *given), result))
    if not runs:
        raise SimhwError(failures[0])
    return vary, runs, failures


def _table(shown, runs, label_keys, keys, limit, failures) -> str:
    from ..cost.sweep import per_token
    from ..report.fmt import gib, pct, seconds, si, table

    rows = []
    for rank, (c, label) in enumerate(shown, 1):
        s, r = dict(c.settings), c.result
        interleave = s.get("parallelism.interleave", 1)
        cells = [f"{s[k]}" + (f" x{interleave}" if k == "parallelism.schedule" and interleave > 1 else "")
                 if k in s else f"{_ABSENT.get(k, '')}" for k in keys]
        rows.append([rank] + [dict(label)[k] for k in label_keys] + cells
                    + [seconds(r.step_time_s), si(r.tokens_per_s, "tok/s"), pct(r.mfu), gib(r.memory.peak_bytes),
                       si(per_token(r, r.energy_j) * 1e6, "J"), f"${per_token(r, r.cost_usd) * 1e6:.4g}"])
    text = table(rows, ["#"] + label_keys + [_SHORT[k] for k in keys]
                 + ["step time", "throughput", "MFU", "memory/device", "energy / M tok", "cloud $ / M tok"], width=400)
    for label, result in runs:
        what = ", ".join(f"{k}={v}" for k, v in label if k != "hardware")
        text += (f"\n{result.layouts} layouts of {result.workload}{' (' + what + ')' if what else ''} on "
                 f"{result.hardware}: {len(result.ranked)} costed settings fit, {result.too_big} layouts do not fit "
                 f"in memory, {result.invalid} are invalid for the model or batch"
                 + (f", {result.too_slow} miss the step-time limit" if limit else "") + ".")
    return text + "".join(f"\n{f}" for f in failures) + f"\nRanked by {runs[0][1].objective.value} per token."


def _batches(text):
    """``--batches 1,8,32`` -> (1, 8, 32); None -> ()."""
    from ..errors import SimhwError

    if text is None:
        return ()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise SimhwError(f"--batches {text!r}: expected whole numbers of at least 1 separated by commas, e.g. 1,8,32.")
    return values
