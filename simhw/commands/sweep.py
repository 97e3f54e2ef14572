"""``simhw sweep WORKLOAD --hw NAME --vary KEY=V1,V2 ...``: what-if table over workload and spec fields."""
from __future__ import annotations

from .common import add_format_option, add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser("sweep", help="what-if table: estimate over values of workload or hardware fields",
                       description="Estimate a workload over every combination of --vary values: workload "
                                   "fields as --set names them (parallelism.tp, micro_batch, model, ...) and "
                                   "spec fields after 'hw.' (hw.memory.hbm.bandwidth, hw.compute.peak.bf16, "
                                   "hw.efficiency.launch; on a node hw.device.<field> or hw.links.intra.bandwidth).")
    p.add_argument("workload", help="workload YAML")
    p.add_argument("--hw", action="append", required=True, metavar="NAME",
                   help="hardware: a shipped name or a spec YAML path; repeat for several machines")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a field and its values, e.g. --vary parallelism.tp=1,2,4,8 or "
                        "--vary hw.memory.hbm.bandwidth=2TB/s,4TB/s; repeat for a grid")
    p.add_argument("--power", choices=("auto", "steady", "burst", "full"), default="auto",
                   help="the die's state under the power limit (as simhw estimate)")
    add_set_option(p)
    add_format_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import csv
    import io
    import json

    from ..cost.sweep import parse_vary, per_token, sweep
    from ..report.fmt import gib, pct, seconds, si, table

    vary = parse_vary(args.vary)
    rows = sweep(args.workload, args.hw, vary, args.overrides, power=args.power)
    keys = [k for k, _ in vary]
    if args.format == "json":
        write_output(json.dumps({"schema": "simhw.sweep/1", "workload": args.workload, "vary": keys,
                                 "rows": [r.to_dict() for r in rows]}, indent=2), args.output)
        return 0
    if args.format == "csv":
        flat = []
        for r in rows:
            d = r.to_dict()
            flat.append({"hardware": d.pop("hardware"), **d.pop("values"), **d})
        fields = list(dict.fromkeys(k for d in flat for k in d))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)
        write_output(buf.getvalue(), args.output)
        return 0
    mode = next(r.result.mode for r in rows if r.result is not None)
    step = {"train": "step time", "prefill": "prefill time", "decode": "decode iteration"}[mode]
    fitting = [r for r in rows if r.result is not None and r.result.memory.fits]
    by_cost = bool(fitting) and all(r.result.cost_usd > 0 for r in fitting)
    # per token processed (combinations may differ in batch): dollars, else device-seconds
    best = min(fitting, key=lambda r: per_token(r.result, r.result.cost_usd if by_cost else
                                                 r.result.step_time_s * r.result.devices), default=None)
    lines, notes = [], []
    for r in rows:
        head = [r.hardware] + [v for _, v in r.values]
        if r.result is None:
            notes.append(f"{', '.join(f'{k}={v}' for k, v in r.values)} on {r.hardware}: {r.error}")
            lines.append(head + ["rejected (below)"] + [""] * 6)
            continue
        e = r.result
        lines.append(head + [seconds(e.step_time_s), si(e.tokens_per_s, "tok/s"), pct(e.mfu), gib(e.memory.peak_bytes),
                             "yes" if e.memory.fits else "NO", si(per_token(e, e.energy_j) * 1e6, "J"),
                             f"${per_token(e, e.cost_usd) * 1e6:.4g}" + (" *" if r is best else "")])
    text = table(lines, ["hardware"] + keys + [step, "throughput", "MFU", "memory/device", "fits",
                                               "energy / M tok", "cloud $ / M tok"], width=400)
    if best is not None:
        text += ("\n* the cheapest per token of the combinations that fit (cloud dollars)" if by_cost else
                 "\n* the fewest device-seconds per token of the combinations that fit (a spec without a cloud price)")
    if notes:
        text += "\n\nrejected:\n" + "\n".join(f"- {n}" for n in notes)
    write_output(text, args.output)
    return 0

