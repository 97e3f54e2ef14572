#!/usr/bin/env python
"""Accuracy report of simhw against the public GPU measurement sets.

    python validate/report.py [--data ../shared/validation] [--gpu a100|h100] [--hw NAME]

Converts each source found under --data (validate/datasets.yaml names them) in memory, costs every
row on --hw, and writes validate/REPORT.md (per data set and op kind: n, median and p90 absolute
percentage error, bias; the flat-roofline baseline; the Splitwise end-to-end rows) and
validate/accuracy_table.md (the short table for the README, also printed).
``--gpu h100`` (data sets that hold H100 files, e.g. fetched from the repositories named in
validate/datasets.yaml) checks the unfitted H100 specs instead and writes validate/REPORT-h100.md
only: the README's table is the A100 one.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"gemm": (0.05, 0.15), "attention": (0.08, 0.20), "collective": (0.10, 0.25)}
# Per GPU: node spec for per-op sets, device spec for single-box serving sets, Splitwise's hardware key
GPUS = {"a100": {"hw": "dgx-a100", "serving_hw": "a100-40gb", "splitwise": "a100-80gb"},
        "h100": {"hw": "dgx-h100", "serving_hw": "h100", "splitwise": "h100-80gb"}}


def naive_s(m, hw) -> float:
    """Flat roofline: max(FLOPs / dense peak, bytes / HBM bandwidth); collectives: bus bytes / link."""
    from simhw.validation.predict import collective_link, device_of
    from simhw.workload.graph import OpKind

    dev = device_of(hw)
    op = m.op
    if op.kind in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
        s = op.shape
        n = int(s["ranks"])
        factor = {0: 2 * (n - 1) / n}.get(int(s["collective"]), (n - 1) / n if int(s["collective"]) < 4 else 1.0)
        link = collective_link(hw, n, m.ranks_per_node)
        return factor * s["bytes"] / link.bandwidth_bytes_per_s
    if op.kind is OpKind.COPY:
        return op.bytes / 31.5e9
    peak = dev.peak(op.dtype)
    return max(op.flops / peak, op.bytes / dev.main_memory.bandwidth_bytes_per_s)


def _pct(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _spct(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.1f}%"


def _only(result, kinds: tuple[str, ...]):
    """``result`` with only the op kinds in ``kinds`` (for the README's short table)."""
    import dataclasses

    return dataclasses.replace(result, kinds={k: v for k, v in result.kinds.items() if k in kinds})


def main(argv: list[str] | None = None) -> int:
    from simhw.spec.load import load_hw
    from simhw.validation import SOURCES, convert, evaluate, frame_to_measurements, group_stats
    from simhw.validation.sources import gpus_under
    from simhw.validation.schema import COLL_CODE
    from simhw.validation.predict import device_of
    from simhw.validation.stats import DURATION_BANDS_S, RowResult, duration_bands
    from ablation import without_light_kernel
    from agreement import agreement, agreement_table
    from facts import a100_notes
    from own_runs import own_runs, own_runs_table, published_runs, published_table, xla_bands_table, fixed_offset_fit, mesh_ratios
    from published_notes import note_figures, vidur_h100_nccl_note, vidur_h100_note
    from simhw.workload.graph import Collective

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "validation")
    p.add_argument("--gpu", default="a100", choices=sorted(GPUS), help="which GPU's rows to check")
    p.add_argument("--hw", default=None, help="spec for the per-op sets (default: the GPU's DGX node)")
    p.add_argument("--out", type=Path, default=ROOT / "validate")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        sys.stderr.write(f"report: {args.data} not found; fetch the sets named in validate/datasets.yaml.\n")
        return 2
    gpu = GPUS[args.gpu]
    args.hw = args.hw or gpu["hw"]
    label = args.gpu.upper()
    hw = load_hw(args.hw)
    started = time.time()
    sections: list[str] = []
    table_rows: list[tuple] = []       # (source, kind, n, median, p90, bias, naive median)
    per_source: dict[str, dict] = {}
    rows_by_source: dict[str, list] = {}
    predicted_by_source: dict[str, dict[int, float]] = {}
    all_rows: dict[str, list] = {}
    scope_rows: list[tuple] = []       # (source, "collective <scope>", n, median, p90, bias)
    for source in SOURCES:
        folder = args.data / source
        if not folder.is_dir():
            continue
        present = gpus_under(folder)
        if present and args.gpu not in present:
            continue
        df = convert(source, folder, gpu=args.gpu if present else None)
        rows, bad = frame_to_measurements(df)
        rows_by_source[source] = rows
        result = evaluate(rows, hw, source, bad)
        predicted_by_source[source] = {r.line: r.predicted_s for r in result.rows}
        naive = {}
        by_line = {m.line: m for m in rows}
        for r in result.rows:
            m = by_line[r.line]
            try:
                naive.setdefault(r.kind, []).append(RowResult(r.line, r.kind, "", "", r.measured_s, naive_s(m, hw)))
            except (ValueError, KeyError, ZeroDivisionError):
                pass
        for kind, st in result.kinds.items():
            nv = group_stats(naive[kind]) if naive.get(kind) else None
            table_rows.append((source, kind, st.n, st.median_ape, st.p90_ape, st.bias, nv.median_ape if nv else None))
            all_rows.setdefault(kind, []).extend(r for r in result.rows if r.kind == kind)
            per_source.setdefault(source, {})[kind] = st
        colls = [r for r in result.rows if r.kind == "collective"]
        scopes = {"inside a node": [r for r in colls if by_line[r.line].ranks_per_node >= by_line[r.line].op.shape["ranks"]],
                  "across nodes": [r for r in colls if by_line[r.line].ranks_per_node < by_line[r.line].op.shape["ranks"]]}
        lines = [f"### {source}", "", f"{len(result.rows)} rows priced, {len(result.unpriced)} not priced, "
                 f"{len(result.bad)} unreadable.", "", "| kind | n | median | p90 | bias | flat roofline median |",
                 "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for (src, kind, n, med, p90, bias, nv) in [t for t in table_rows if t[0] == source]:
            lines.append(f"| {kind} | {n} | {_pct(med)} | {_pct(p90)} | {_spct(bias)} | {_pct(nv)} |")
        if colls and all(scopes.values()):
            lines += ["", "Collectives by scope:", ""]
            for scope, rs in scopes.items():
                st = group_stats(rs)
                lines.append(f"- {scope}: n {st.n}, median {_pct(st.median_ape)}, p90 {_pct(st.p90_ape)}, bias {_spct(st.bias)}")
                scope_rows.append((source, f"collective {scope}", st.n, st.median_ape, st.p90_ape, st.bias))
                for coll in (Collective.ALL_REDUCE, Collective.SEND_RECV):
                    name = coll.value
                    sub = [r for r in rs if by_line[r.line].op.shape.get("collective", -1) == COLL_CODE[coll]]
                    if sub and len(sub) < len(rs):
                        so = group_stats(sub)
                        lines.append(f"  - {name}: n {so.n}, median {_pct(so.median_ape)}, p90 {_pct(so.p90_ape)}, "
                                     f"bias {_spct(so.bias)}")
            lines.append(_fabric_fit([m for m in rows if m.kind == "collective"], hw))
        custom = [r for r in colls if by_line[r.line].op.shape.get("custom")]
        if custom and len(custom) < len(colls):    # the engine's own all-reduce beside NCCL's collectives
            lines += ["", "Collectives by library:", ""]
            for name, rs in (("NCCL", [r for r in colls if r not in custom]),
                             ("vLLM's custom all-reduce (cost/comm.py custom_all_reduce_time_s; NCCL's from 8 MiB)", custom)):
                st = group_stats(rs)
                lines.append(f"- {name}: n {st.n}, median {_pct(st.median_ape)}, p90 {_pct(st.p90_ape)}, bias {_spct(st.bias)}")
        bands = duration_bands(result.rows)
        if bands:
            lines += ["", "By measured time:", "", "| kind | measured | n | median | p90 | bias |",
                      "| --- | --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {k} | {b} | {v.n} | {_pct(v.median_ape)} | {_pct(v.p90_ape)} | {_spct(v.bias)} |"
                      for (k, b), v in bands.items()]
        short_s = DURATION_BANDS_S[0]     # the GEMM errors also without kernels shorter than the first band
        longer = [r for r in result.rows if r.kind == "gemm" and r.measured_s >= short_s]
        if longer and len(longer) < result.kinds["gemm"].n:
            st = group_stats(longer)
            lines += ["", f"GEMMs of {short_s * 1e6:.0f} us or more: n {st.n}, median {_pct(st.median_ape)}, "
                      f"p90 {_pct(st.p90_ape)}, bias {_spct(st.bias)}"]
        lines += without_light_kernel(rows, hw, source, short_s)
        lines += ["", "Worst rows:", ""]
        for kind in result.kinds:
            for r in result.worst(kind, 3):
                lines.append(f"- {kind}, line {r.line} ({r.label}): measured {r.measured_s * 1e6:.1f} us, "
                             f"predicted {r.predicted_s * 1e6:.1f} us ({_spct(r.error)})")
        sections.append("\n".join(lines))
    e2e_section, e2e_row = _e2e(args.data, args.gpu)
    elapsed = time.time() - started
    overall = {k: group_stats(v) for k, v in all_rows.items()}
    acc = ["| data set | op kind | n | median error | p90 error | bias |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for (source, kind, n, med, p90, bias, _) in table_rows:
        acc.append(f"| {source} | {kind} | {n} | {_pct(med)} | {_pct(p90)} | {_spct(bias)} |")
        for (_, sk, sn, smed, sp90, sbias) in [t for t in scope_rows if t[0] == source and kind == "collective"]:
            acc.append(f"| {source} | {sk} | {sn} | {_pct(smed)} | {_pct(sp90)} | {_spct(sbias)} |")
    for kind, st in overall.items():
        acc.append(f"| all {label} sets | {kind} | {st.n} | {_pct(st.median_ape)} | {_pct(st.p90_ape)} | {_spct(st.bias)} |")
    if e2e_row:
        acc.append(e2e_row)
    if not table_rows and not e2e_row:
        sys.stderr.write(f"report: no {label} measurements under {args.data}; nothing written.\n")
        return 2
    report_name = "REPORT.md" if args.gpu == "a100" else f"REPORT-{args.gpu}.md"
    command = f"python validate/report.py --hw {args.hw}" + (f" --gpu {args.gpu}" if args.gpu != "a100" else "")
    names = list(per_source) + [f"all {label} sets"]
    targets = ["| op kind | target median / p90 | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for kind, (tm, tp) in TARGETS.items():
        cells = []
        for name in names:
            st = overall.get(kind) if name == f"all {label} sets" else per_source[name].get(kind)
            cells.append("-" if st is None else _verdict(st.median_ape, st.p90_ape, tm, tp))
        targets.append(f"| {kind} | {_pct(tm)} / {_pct(tp)} | " + " | ".join(cells) + " |")
        scoped = {t[0]: t for t in scope_rows if t[1] == f"{kind} inside a node"}
        if scoped:
            cells = [_verdict(scoped[n][3], scoped[n][4], tm, tp) if n in scoped else "-" for n in names]
            targets.append(f"| {kind} inside a node | {_pct(tm)} / {_pct(tp)} | " + " | ".join(cells) + " |")
    runs = own_runs() if args.gpu == "a100" else []
    own_intro = ("simhw's own CUDA runs (validate/data/, measured with validate/gpu/run_all.py; no constant is "
                 "fitted on these rows except the row-wise kernels' cycles (simhw/cost/rowwise.py), fitted on the "
                 "H100's measurements-rowwise.csv (its H200 twin and both GPUs' held-out shapes, "
                 "measurements-rowwise-holdout.csv, are checks); the Hopper specs' measured (M) constants come "
                 "from the same machines' microbenchmarks, power runs and smallest kernels")
    trace_caveat = ("; the steady-state files' rows carry power=steady, the others are priced as bursts "
                    "that warm the die over their loop's 125 launches (held_s; simhw/cost/power.py), the "
                    "training-step traces as a burst as long as their step")
    own_full = own_intro + trace_caveat + "):\n\n" + own_runs_table(runs) if runs else ""
    short = [r for r in runs if r[1] in ("measurements-steady.csv", "measurements.csv")]
    short += [(run, name, spec, _only(result, ("norm", "softmax"))) for run, name, spec, result in runs
              if name in ("measurements-rowwise.csv", "measurements-rowwise-holdout.csv")]
    own_text = ("\n\n" + own_intro + "):\n\n" + own_runs_table(short)
                + "\n\nThe fp16 runs, the training-step traces and the row-wise files' GELU and GEMM rows: validate/REPORT.md.") if runs else ""
    published = published_runs() if args.gpu == "a100" else []
    xla_bands = xla_bands_table(published) if published else ""
    h100_dots = [result for name, _, _, result in published if name == "xla-gemm-h100-bf16.csv"]
    if xla_bands and h100_dots:
        offset, off_median, off_p90 = fixed_offset_fit(h100_dots[0])
        measured, priced = mesh_ratios(load_hw("mi300x-8"))
        xla_note = XLA_NOTE.format(offset_us=offset * 1e6, offset_median=off_median, offset_p90=off_p90,
                                   mesh_measured=" : ".join(f"{r:.1f}" for r in measured[1:]),
                                   mesh_priced=" : ".join(f"{r:.1f}" for r in priced[1:]), **note_figures())
    published_text = ("\n\nPublished kernel times of other GPUs, transcribed in validate/data/published/ "
                      "(its README names each source and what was fitted on it):\n\n"
                      + published_table(published)) if published else ""
    agree = agreement_table(agreement(rows_by_source, predicted_by_source))
    agree_text = ("\n\nThe public sets also disagree with each other where they timed the same kernel shape on "
                  "the same GPU model (kernel-timed rows, per-shape medians; validate/agreement.py). The best single "
                  "number per shape, the geometric mean of the two times, is a floor under any model's error "
                  "against both sets:\n\n" + agree) if agree else ""
    acc_text = (f"Accuracy of simhw against real {label} measurements (errors are |predicted/measured - 1|; "
                f"bias = median signed error, + = simhw slower). Produced by `{command}`; details in "
                f"validate/{report_name}.\n\n" + "\n".join(acc) + "\n\nTargets of issue 3 (median / p90) against "
                "these rows:\n\n" + "\n".join(targets) + agree_text + own_text + published_text + "\n")
    notes = a100_notes(rows_by_source, device_of(hw)) if args.gpu == "a100" else (
        f"## Notes\n\nEvery constant marked F in the specs was fitted on A100 rows; these {label} rows were "
        "not used to fit anything (the specs' T/D values carry the A100 fits over).\n")
    report = "\n".join([
        f"# simhw accuracy report ({label})", "",
        f"Generated by `{command}` from the public measurement sets in `{args.data.name}/` "
        f"(named in validate/datasets.yaml; not copied here) on the spec `{hw.name}` "
        f"({elapsed:.0f} s). Errors are fractions |predicted / measured - 1| per row; bias is the median "
        "signed error (+ = simhw predicts slower). 'flat roofline' is max(FLOPs / peak, bytes / HBM "
        "bandwidth) (collectives: bus bytes / link bandwidth) with no efficiency model.", "",
        "## Summary", "", "\n".join(acc), "", "## Targets", "", "\n".join(targets), "",
        *(["## Agreement between the sets", "", agree_text.strip(), ""] if agree_text else []),
        *(["## simhw's own CUDA runs", "", own_full, ""] if own_full else []),
        *(["## Published kernel times", "", published_text.strip(), ""] if published_text else []),
        *([vidur_h100_note(), ""] if any(name == "vidur-h100-sample.csv" for name, *_ in published) else []),
        *([vidur_h100_nccl_note(), ""] if any(name == "vidur-h100-nccl-sample.csv" for name, *_ in published) else []),
        *(["### OpenXLA's tables by measured time", "", xla_note, "", xla_bands, ""] if xla_bands and h100_dots else []),
        "## Per data set", "", "\n\n".join(sections), "", e2e_section, "",
        notes,
        ""])
    args.out.mkdir(parents=True, exist_ok=True)
    if args.gpu != "a100":   # the README and its table are the A100 ones
        (args.out / report_name).write_text(report, encoding="utf-8")
        print(acc_text)
        return 0
    (args.out / "REPORT.md").write_text(report, encoding="utf-8")
    (args.out / "accuracy_table.md").write_text(acc_text, encoding="utf-8")
    _splice_readme(acc_text)
    print(acc_text)
    return 0


XLA_NOTE = (
    "OpenXLA's measured tables (validate/xla_tables.py names the files, the commit and how XLA timed them) "
    "are the only per-shape B200 and MI300X measurements here. What their errors mean:\n\n"
    "- GEMMs: XLA's kernels carry more fixed time than cuBLAS in a CUDA graph. On the H100, adding "
    "{offset_us:.1f} us to every prediction leaves {offset_median:.1%} median, {offset_p90:.1%} p90 on its "
    "bf16 rows (a least-squares offset, validate/own_runs.py fixed_offset_fit, as a diagnostic only; "
    "nothing is fitted). The B200 bf16 dots measured at 50 us or more come out {b200_full:+.1%} at the "
    "median as priced (power=full, which the H100's rows match) and {b200_burst:+.1%} priced as bursts at the "
    "power limit: either the B200's limiter acts within a 100-us kernel or its tensor pipes reach less than "
    "the {b200_compute_fraction:.2f} assumed (UNVERIFIED either way). The TF32 rows are erratic in shape, XLA's "
    "kernel choice (on the H100, 1024 x 256 x 4096 runs at 162 TFLOP/s and 1024 x 512 x 4096 at 122); at the "
    "largest shapes they reach bf16's fraction of peak (0.81).\n"
    "- Collectives: each time is XLA's whole executable, GPU events around it, so messages below about "
    "1 MB measure XLA's launch and the ranks' skew (12-200 us for a few KB), not NCCL's latency. From "
    "16 MiB up the all-gathers, reduce-scatters and all-to-alls over 4-8 GPUs are off by {others_h100:.1%} "
    "(H100) and {others_b200:.1%} (B200) at the median; at 2 GPUs they come out {others2_h100:+.1%} and "
    "{others2_b200:+.1%}, where they move {two_lo:.2f}-{two_hi:.2f} of their 8-GPU bus bandwidth (1 GiB and "
    "more; NCCL's out-of-place copy of each rank's own chunk, collective_local_copy). The all-reduces come out {allreduce_h100:+.1%} and {allreduce_b200:+.1%}: at 8 GPUs "
    "XLA's reach {ar_ag_h100:.2f}x (H100) and {ar_ag_b200:.2f}x (B200) their all-gathers' bus bandwidth, less "
    "than the NVLink SHARP gain simhw prices (collective_nvls_fraction), where the GB200 rack's reach "
    "{nvls_gain:.2f}x (4-72 GPUs, 1 GiB and more). The rack's all-to-alls of a few KB take 12 us at 8-18 GPUs "
    "and 55-115 us at 64-72, where simhw prices n - 1 dependent steps; the collective-permutes (send_recv "
    "rows, 4-8 pairs at once) of 1-2 GiB move {permute_lo:.2f}-{permute_hi:.2f} of one NVLink direction, "
    "against the {p2p_fraction:.2f} a lone A100 pair reaches. The GB300 rack's table, priced "
    "with the constants measured on the GB200 rack's, comes out as close as that one (table above). The MI300X platform's Infinity "
    "Fabric is a mesh, not a switch: its collectives of 256 MiB and more over 2, 4 and 8 GPUs move "
    "1 : {mesh_measured} times the 2-GPU bus bandwidth (all-gathers), where g - 1 of the 7 links give 1 : "
    "{mesh_priced} (nothing fitted; below "
    "about 8 MB XLA on ROCm takes 170-250 us per executable).")


def _verdict(median: float, p90: float, target_median: float, target_p90: float) -> str:
    ok = "met" if median <= target_median and p90 <= target_p90 else "missed"
    return f"{ok}: {_pct(median)} / {_pct(p90)}"


def _fabric_fit(rows, hw) -> str:
    """One line: the across-node rows with the node's network fitted by simhw calibrate (70/30 split)."""
    from simhw.calibrate import NETWORK_PARAMS, calibrate, spans_nodes

    across = [m for m in rows if spans_nodes(m)]
    if not across or getattr(hw, "network", None) is None:
        return ""
    r = calibrate(across, hw, params=list(NETWORK_PARAMS), max_fit_rows=800)
    bw, lat = r.params["network_bandwidth_bytes_per_s"][1], r.params["network_latency_s"][1]
    nics = r.params["network_nics"][1]
    b, a = r.before["collective"], r.after["collective"]
    return (f"- across nodes, the network fitted by `simhw calibrate` ({r.n_fit} training rows): "
            f"{bw / 1e9:.1f} GB/s per NIC, {lat * 1e6:.0f} us per hop, {nics:.1f} NICs' worth per node (links.network.nics; "
            f"a DGX has 8); held-back rows (n {a.n}) median "
            f"{_pct(b.median_ape)} -> {_pct(a.median_ape)}, p90 {_pct(b.p90_ape)} -> {_pct(a.p90_ape)}, "
            f"bias {_spct(a.bias)}")


def _splice_readme(table: str) -> None:
    """Put the accuracy table into README.md between its accuracy markers (the README's figures
    come from this script, never by hand)."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    begin, end = "<!-- accuracy:begin (generated by validate/report.py) -->", "<!-- accuracy:end -->"
    text = readme.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + begin + "\n" + table.strip() + "\n" + end + tail, encoding="utf-8")


def _e2e(data: Path, gpu: str = "a100") -> tuple[str, str | None]:
    """End-to-end sections (Splitwise on the GPU's DGX; ML.ENERGY TPOT and energy per token and
    LLM-Inference-Bench vLLM time and GPU energy on the single-GPU spec) and their summary rows, each
    only when its data set has rows of ``gpu``."""
    from functools import partial

    from simhw.validation.e2e import (argonne_energy_rows, argonne_energy_table, argonne_rows, argonne_table,
                                      mlenergy_energy_table, mlenergy_rows, mlenergy_table, splitwise_rows,
                                      splitwise_table)

    sections, summaries = [], []
    argonne, mlenergy = data / "argonne-llm-inference-bench", data / "ml-energy-leaderboard-v2"
    g = GPUS[gpu]
    one = {"hw": g["serving_hw"], "gpu": gpu}
    for folder, rows_of, table_of in (
            (data / "splitwise-sim", partial(splitwise_rows, hw=g["hw"], hardware=g["splitwise"]), splitwise_table),
            (mlenergy, partial(mlenergy_rows, **one), mlenergy_table),
            (mlenergy, partial(mlenergy_rows, energy=True, **one), mlenergy_energy_table),
            (argonne, partial(argonne_rows, **one), argonne_table),
            (argonne, partial(argonne_rows, framework="TensorRT-LLM", **one),
             partial(argonne_table, framework="TensorRT-LLM")),
            (argonne, partial(argonne_energy_rows, **one), argonne_energy_table)):
        if folder.is_dir():
            rows = rows_of(folder)
            if rows:
                section, summary = table_of(rows)
                if gpu != "a100":   # the sections' text describes the A100 rows and fits
                    head, _, body = section.partition("\n")
                    for old in ("A100-SXM4-40GB", "A100"):
                        head = head.replace(old, gpu.upper())
                    section = f"{head} -- unfitted\n{body}"
                sections.append(section)
                summaries.append(summary)
    if gpu == "a100":     # published training throughput, shipped in validate/data (A100 and H100 rows)
        from simhw.validation.training import cool_a100_node, llm_foundry_rows, llm_foundry_table

        path = ROOT / "validate" / "data" / "llm-foundry" / "throughput.csv"
        section, summary = llm_foundry_table(llm_foundry_rows(path),
                                             llm_foundry_rows(path, {"a100_80gb": cool_a100_node()}))
        sections.append(section)
        summaries.append(summary)
        from simhw.validation.published_training import published_training_rows, published_training_table

        section, summary = published_training_table(published_training_rows(
            ROOT / "validate" / "data" / "published-training" / "throughput.csv"))
        sections.append(section)
        summaries.append(summary)
        from simhw.validation.training import own_training_rows, own_training_table

        runs = {}
        for spec in ("h100", "h200"):
            for stem, what in (("train_e2e", ""), ("train_e2e-checkpoint", ", full recompute"),
                               ("train_e2e-llama", ", RMSNorm + SwiGLU"), ("train_e2e-fusedadam", ", fused AdamW"),
                               ("train_e2e-fusedadam-compiled", ", torch.compile + fused AdamW"),
                               ("train_e2e-llama-fusedadam-compiled", ", RMSNorm + SwiGLU, torch.compile + fused AdamW")):
                own = ROOT / "validate" / "data" / f"{spec}-2026-11-26" / f"{stem}.csv"
                if own.is_file():
                    framework = "compiled" if stem.endswith("-compiled") else "eager"
                    runs[spec + what] = (framework, own_training_rows(own, spec, framework),
                                         own_training_rows(own, spec, "fused"))
        if runs:
            section, summary = own_training_table(runs)
            sections.append(section)
            summaries.append(summary)
    return "\n\n".join(sections), ("\n".join(summaries) or None)


if __name__ == "__main__":
    raise SystemExit(main())
