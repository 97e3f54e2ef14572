"""simhw's own CUDA measurements (validate/data/<gpu>-<date>/, taken with validate/gpu/run_all.py):
each run's operator rows costed on the spec of the GPU that ran them (env.json names it).

Used by validate/report.py for the report's and the README's "own GPU runs" table. The microbench
rows (microbench.csv) are not costed: they set the measured (M) values of the Hopper specs.
"""
from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
# nvidia-smi / torch device name -> simhw spec
SPEC_OF_GPU = {"NVIDIA H100 80GB HBM3": "h100", "NVIDIA H200": "h200", "NVIDIA A100-SXM4-80GB": "a100",
               "NVIDIA A100-SXM4-40GB": "a100-40gb"}
# costed files: the steady-state GEMM/attention run (--soak 0.3: each kernel runs 0.3 s before it is
# timed, so the power limiter and the die's temperature have settled; its rows carry power=steady),
# then the first bf16 run (its GEMM/attention rows ran in bursts of 20-200 ms: priced as
# power=burst, the default) and the fp16 run (the same bursts). The repeat run and the L2-hot GEMMs
# are for spread and cache effects, not separate checks. The row-wise sweep (softmax and norms by row
# width, GEMMs re-read by a loop): the H100's fitted the row kernels' cycles (validate/fit_rowwise.py),
# the H200's is their check; the held-out shapes (validate/gpu/rowwise_holdout.py) check both GPUs.
FILES = ("measurements-steady.csv", "measurements.csv", "measurements-fp16.csv", "measurements-rowwise.csv",
         "measurements-rowwise-holdout.csv")
TRACE = "train_step_trace.json.gz"   # one profiled training step: each op's own kernel time (a 10 ms
                                     # step after 30 ms of warm-up: priced as a burst, the default)


def own_runs(data: Path = DATA) -> list[tuple[str, str, str, object]]:
    """(run folder, file, spec name, ValidationResult) for every costed file of every run whose GPU
    has a spec; runs of other GPUs are skipped."""
    import dataclasses

    from gpu.common import held_s     # the harness's launches per row (validate/gpu/common.py time_kernel)
    from simhw.spec.load import load_hw
    from simhw.validation import evaluate, read_measurements, trace_result

    out = []
    for folder in sorted(p for p in data.glob("*") if (p / "env.json").is_file()):
        gpu = json.loads((folder / "env.json").read_text(encoding="utf-8")).get("gpu", "")
        spec = SPEC_OF_GPU.get(gpu)
        if spec is None:
            continue
        hw = load_hw(spec)
        for name in FILES:
            path = folder / name
            if path.is_file():
                rows, bad = read_measurements(path)
                # the committed files predate the harness's held_s column: derive it the same way
                rows = [dataclasses.replace(m, held_s=held_s(m.measured_s))
                        if m.timing == "kernel" and m.held_s is None else m for m in rows]
                out.append((folder.name, name, spec, evaluate(rows, hw, str(path), bad)))
        for path in [folder / TRACE] + sorted(folder.glob("train_e2e_*_trace.json.gz")):
            if path.is_file():    # the training steps of validate/gpu/train_e2e.py --trace, priced the same way
                out.append((folder.name, path.name, spec, trace_result(path, hw)))
    return out


def own_runs_table(runs) -> str:
    """Markdown table: run, file, spec, kind, n, median, p90, bias."""
    return _kinds_table(("run", "file", "spec"), [((run, name, spec), result) for run, name, spec, result in runs])


def _kinds_table(heads: tuple[str, ...], groups) -> str:
    """Markdown: the ``heads`` cells of each group, then one line per op kind of its ValidationResult."""
    lines = ["| " + " | ".join(heads) + " | op kind | n | median error | p90 error | bias |",
             "| " + " | ".join("---" for _ in heads) + " | --- | ---: | ---: | ---: | ---: |"]
    for cells, result in groups:
        for kind, st in result.kinds.items():
            lines.append("| " + " | ".join(cells) + f" | {kind} | {st.n} | {100 * st.median_ape:.1f}% | "
                         f"{100 * st.p90_ape:.1f}% | {100 * st.bias:+.1f}% |")
    return "\n".join(lines)


# published kernel times (validate/data/published/README.md): file -> (spec, what the rows are)
PUBLISHED = {"flashinfer-gdn-b200.csv": ("b200", "flashinfer's Gated DeltaNet prefill (PR 2742); the spec's "
                                                 "scan_step_latency was fitted on these rows"),
             **{f"xla-gemm-{gpu}-{dtype}.csv": (gpu, f"OpenXLA's {name} dot table, {dtype} (XLA's chosen kernel, "
                                                     "b 1-4, m, n, k 256-4096); unfitted")
                for gpu, name in (("h100", "H100"), ("b200", "B200"), ("mi300x", "MI300X")) for dtype in ("bf16", "tf32")},
             **{f"xla-collective-{node}.csv": (node, f"OpenXLA's {name} collective table (NCCL through XLA, 2-8 GPUs, "
                                                    "128 B-2 GiB); its 8-GPU all-gather, reduce-scatter and all-to-all "
                                                    "rows of 1-2 GiB set collective_bus_fraction")
                for node, name in (("dgx-h100", "H100"), ("dgx-b200", "B200"))},
             "xla-collective-gb200-nvl72.csv": ("gb200-nvl72", "OpenXLA's GB200 NVL72 collective table (NCCL through "
                                                "XLA, 4-72 GPUs, 288 B-32 GiB); the rack's bus fraction, NVLink SHARP "
                                                "fraction and hop latency were measured on it (hwspecs/gb200.yaml)"),
             "xla-collective-gb300-nvl72.csv": ("gb300-nvl72", "OpenXLA's GB300 NVL72 collective table (NCCL "
                                                "through XLA, 4-72 GPUs, 288 B-32 GiB); unfitted: the spec carries "
                                                "the GB200 rack's measured constants"),
             "xla-collective-mi300x-8.csv": ("mi300x-8", "OpenXLA's MI300X collective table (RCCL through XLA, 2-8 "
                                             "GPUs of the Infinity Fabric mesh, 128 B-1 GiB); unfitted"),
             "vidur-h100-sample.csv": ("h100", "vidur's H100 per-op profile (Llama-2-7B and 70B, TP 1-8, 1-4096 tokens; "
                                       "90 of its points, spread over both files); unfitted"),
             "vidur-h100-nccl-sample.csv": ("dgx-h100", "vidur's DGX H100 NCCL profile (all-reduce over 2-8 GPUs, "
                                            "send/recv inside and across nodes, 2 KiB-64 MiB); unfitted")}


def published_runs(data: Path = DATA) -> list[tuple[str, str, str, object]]:
    """(file, note, spec name, ValidationResult) for each transcribed published file."""
    from simhw.spec.load import load_hw
    from simhw.validation import evaluate, read_measurements

    out = []
    for name, (spec, note) in PUBLISHED.items():
        path = data / "published" / name
        if path.is_file():
            rows, bad = read_measurements(path)
            out.append((name, note, spec, evaluate(rows, load_hw(spec), str(path), bad)))
    return out


def published_table(runs) -> str:
    return _kinds_table(("file", "spec", "what"), [((name, spec, note), result) for name, note, spec, result in runs])


def xla_bands_table(runs) -> str:
    """Markdown: the OpenXLA tables' errors by measured-time band (file, band, n, median, p90, bias):
    their short rows carry XLA's own fixed costs (module docstring of validate/xla_tables.py)."""
    from simhw.validation.stats import duration_bands

    lines = ["| file | measured | n | median error | p90 error | bias |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for name, _, _, result in runs:
        if name.startswith("xla-"):
            for (_, band), st in duration_bands(result.rows).items():
                lines.append(f"| {name} | {band} | {st.n} | {100 * st.median_ape:.1f}% | {100 * st.p90_ape:.1f}% | "
                             f"{100 * st.bias:+.1f}% |")
    return "\n".join(lines) if len(lines) > 2 else ""


def fixed_offset_fit(result) -> tuple[float, float, float]:
    """(offset s, median, p90 of |(predicted + offset) / measured - 1|) for the one time added to
    every row's prediction that minimises the squared relative errors: how much of a file's error
    is a fixed cost per kernel (a diagnostic for XLA's dot tables; nothing is fitted into a spec)."""
    import numpy as np

    measured = np.array([r.measured_s for r in result.rows])
    predicted = np.array([r.predicted_s for r in result.rows])
    w = 1.0 / measured ** 2
    offset = float(np.sum((measured - predicted) * w) / np.sum(w))
    e = np.abs((predicted + offset) / measured - 1)
    return offset, float(np.median(e)), float(np.quantile(e, 0.9))


def bus_bandwidth(node: str, op: str, ranks, hw=None, min_bytes: float = 2 ** 30) -> float:
    """Median bus bandwidth, B/s (nccl-tests' convention: all-reduce moves 2 (n - 1) / n of the
    buffer, the others (n - 1) / n), of an OpenXLA collective file's ``op`` rows (label prefix, e.g.
    "all-gather") of at least ``min_bytes`` over ``ranks`` GPUs: measured, or as ``hw`` prices them."""
    import numpy as np

    from simhw.validation import read_measurements
    from simhw.validation.predict import predict_s

    rows, _ = read_measurements(DATA / "published" / f"xla-collective-{node}.csv")
    out = []
    for m in rows:
        s = m.op.shape
        n = s["ranks"]
        if m.label.startswith(op) and n in ranks and s["bytes"] >= min_bytes:
            steps = 2 if op == "all-reduce" else 1
            out.append(steps * (n - 1) / n * s["bytes"] / (predict_s(m, hw) if hw is not None else m.measured_s))
    return float(np.median(out))


def mesh_ratios(hw) -> tuple[list[float], list[float]]:
    """(measured, priced) bus bandwidth of the MI300X platform's all-gathers of 256 MiB and more over
    2, 4 and 8 GPUs, each over the 2-GPU one (validate/report.py's note on the mesh topology)."""
    out = []
    for spec in (None, hw):
        bw = [bus_bandwidth("mi300x-8", "all-gather", (g,), spec, 2 ** 28) for g in (2, 4, 8)]
        out.append([b / bw[0] for b in bw])
    return out[0], out[1]
