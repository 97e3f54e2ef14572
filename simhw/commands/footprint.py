"""``simhw footprint WORKLOAD --hw NAME``: energy, CO2e, dollars and material of a whole training run.

Falk et al.'s scenarios (``--mfu``, ``--lifespan``), ACT22 carbon (``--grid``, ``--pue``), the run's
budget (``--total-flops`` or ``--tokens``). Heavy modules load inside :func:`run`.
"""
from __future__ import annotations

from .common import add_format_option, add_set_option, write_output


def register(sub) -> None:
    p = sub.add_parser(
        "footprint", help="energy, carbon, dollars and material (GPUs, metals) of a whole run",
        description="Footprint of a training run: the workload as configured (step estimate x steps) and "
                    "Falk et al.'s scenarios N = C / (R_peak x MFU x lifespan) for every MFU and lifespan.")
    p.add_argument("workload", help="workload YAML (e.g. workloads/gpt4-train.yaml)")
    p.add_argument("--hw", required=True, metavar="NAME", help="hardware: a shipped name or a spec YAML path")
    p.add_argument("--mfu", default="0.2,0.6", metavar="LIST",
                   help="model FLOPs utilisations, fractions in (0, 1] (default: 0.2,0.6)")
    p.add_argument("--lifespan", default="1y,3y", metavar="LIST",
                   help="device lifespans with units: 1y, 3y, 18mo, 365d (default: 1y,3y)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--total-flops", default=None, metavar="C",
                        help="model FLOPs of the whole run, e.g. 2.1e25")
    budget.add_argument("--tokens", default=None, metavar="N", help="training tokens of the whole run")
    p.add_argument("--grid", default="usa", metavar="WHERE",
                   help="grid carbon intensity: usa, europe, taiwan, world (ACT22) or g/kWh (default: usa)")
    p.add_argument("--pue", default="1.1", metavar="X", help="power usage effectiveness >= 1 (default: 1.1)")
    add_set_option(p)
    add_format_option(p, choices=("table", "json"))
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    from ..footprint.inputs import parse_grid, parse_lifespans, parse_mfus, parse_positive, parse_pue

    mfus = parse_mfus(args.mfu)
    lifespans = parse_lifespans(args.lifespan)
    parse_grid(args.grid)
    pue = parse_pue(args.pue)
    total = parse_positive(args.total_flops, "--total-flops", "2.1e25") if args.total_flops is not None else None
    tokens = parse_positive(args.tokens, "--tokens", "13e12") if args.tokens is not None else None

    from ..footprint.scenarios import footprint
    from ..spec.load import load_hw
    from ..workload.from_yaml import load_workload

    hw = load_hw(args.hw)
    wl = load_workload(args.workload, args.overrides)
    res = footprint(wl, hw, total_flops=total, tokens=tokens, mfus=mfus, lifespans_s=lifespans,
                    grid=args.grid, pue=pue)
    text = json.dumps(res.to_dict(), indent=2) if args.format == "json" else footprint_table(res)
    write_output(text, args.output)
    return 0


def _years(seconds: float) -> str:
    from ..footprint.inputs import YEAR_S

    y = seconds / YEAR_S
    return f"{y:.3g} y" if y >= 0.1 else f"{seconds / 86400:.3g} d"


def _kg(kg: float) -> str:
    return f"{kg / 1e3:,.4g} t" if abs(kg) >= 1e3 else f"{kg:.3g} kg"


def _usd(usd: float) -> str:
    for scale, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if abs(usd) >= scale:
            return f"${usd / scale:.3g}{suffix}"
    return f"${usd:.3g}"


def _mwh(j: float) -> str:
    from ..report.fmt import si

    return si(j / 3600.0, "Wh", digits=4)


def footprint_table(res) -> str:
    """The footprint as text that fits 100 columns."""
    from textwrap import wrap

    from ..report.fmt import pct, si, table

    r, e, b = res.run, res.embodied_per_device, res.budget
    out = [f"{res.workload} on {res.hardware}: {res.dtype} peak {si(res.peak_flop_per_s, 'FLOP/s')}",
           f"budget {b.total_flops:.3g} FLOP = {b.tokens:.3g} tokens x {b.flops_per_token:.3g} FLOP/token",
           *wrap(f"  from {b.source}", 100, subsequent_indent="  "),
           f"grid {res.grid} {res.grid_g_per_kwh:g} g/kWh (ACT22), PUE {res.pue:g}, fab {res.fab_location}", ""]
    emb = (f"embodied per device (ACT22): die {e.die_area_m2 * 1e4:.3g} cm2 x {e.cpa_kg_per_m2 / 1e4:.3g} kg/cm2 "
           f"({e.act_node_nm} nm row) = {e.die_kgco2e:.3g} kg" if e.method == "act"
           else f"embodied per device: {e.die_kgco2e:.3g} kg (spec figure)")
    if e.memory_bytes:
        emb += (f"; memory {e.memory_bytes / 1e9:.4g} GB x {e.memory_kg_per_byte * 1e12:.3g} g/GB "
                f"(ddr4 proxy for HBM) = {e.memory_kgco2e:.3g} kg; total {e.total_kgco2e:.3g} kg")
    if e.llmcarbon_die_kgco2e:
        emb += f" (LLMCarbon die: {e.llmcarbon_die_kgco2e:.3g} kg)"
    out += wrap(emb, 100, subsequent_indent="  ") + [""]
    ec = r.economics
    out.append(f"As configured ({r.devices} devices, MFU {pct(r.mfu)} from the step estimate):")
    out.append(table([
        ["steps / run time", f"{r.steps:,.0f} / {r.run_time_s / 86400:,.4g} days"],
        ["energy (x PUE)", _mwh(r.energy_j)],
        ["operational CO2e", _kg(r.operational_kgco2e)],
        ["embodied CO2e, amortised / whole", f"{_kg(r.embodied_amortised_kgco2e)} / {_kg(r.embodied_whole_kgco2e)}"],
        ["  (lifespan)", f"{_years(r.lifespan_s)} ({r.lifespan_source})"],
        ["cloud cost", f"{_usd(ec.cloud_usd)} ({ec.device_hours:,.4g} device-hours)"],
        ["capex, amortised / whole", f"{_usd(ec.capex_amortised_usd)} / {_usd(ec.capex_usd)}"],
    ], ["metric", "value"]))
    out += ["", "Falk et al. scenarios: N = C / (R_peak x MFU x lifespan); GPUs spend their life on the run"]
    rows = [[pct(s.mfu), _years(s.lifespan_s), f"{s.gpus:,}", f"{s.power_w:.0f} W", _mwh(s.energy_j),
             _kg(s.operational_kgco2e), _kg(s.embodied_kgco2e), _kg(s.material.total_kg),
             _kg(s.material.heavy_metals_kg), _usd(s.cloud_usd), _usd(s.capex_usd)]
            for s in res.scenarios]
    out.append(table(rows, ["MFU", "life", "GPUs", "power", "energy", "op CO2e", "emb CO2e", "mass",
                            "heavy met.", "cloud", "capex"]))
    f = res.findings
    if f is not None:
        out.append("")
        out += wrap(f"GPU savings: MFU {pct(f.mfu_from)} -> {pct(f.mfu_to)}: {pct(f.mfu_saving)}; lifespan "
                    f"{_years(f.lifespan_from_s)} -> {_years(f.lifespan_to_s)}: {pct(f.lifespan_saving)}; both: "
                    f"{pct(f.combined_saving)} (Falk et al. state up to 93%, which needs a combined factor "
                    f"of {f.factor_needed_for_stated:.3g}; "
                    f"{'reached' if f.stated_reached else 'not reached by this grid'}).", 100)
    top = max(res.scenarios, key=lambda s: s.gpus)
    els = ", ".join(f"{k} {_kg(v)}" for k, v in sorted(top.material.elements_kg.items(), key=lambda kv: -kv[1]))
    out += wrap(f"Elements of the largest scenario ({top.gpus:,} GPUs x {top.material.mass_per_gpu_kg:.3g} kg, "
                f"shares UNVERIFIED): {els}", 100, subsequent_indent="  ")
    out.append("")
    for note in res.notes:
        if note.startswith("budget:"):   # printed under the budget line already
            continue
        out += wrap(f"note: {note}", 100, subsequent_indent="  ")
    return "\n".join(out)
