"""End to end: serving measurements against :func:`simhw.estimate` in prefill / decode mode.

Splitwise (Mutinifni/splitwise-sim@8f99e7dc data/perf_model.csv, a100-80gb rows): Llama-2-70B at
TP 2/4/8 and BLOOM-176B at TP 8; ``prompt_time`` is the prefill of ``batch_size`` prompts of
``prompt_size`` tokens, ``token_time`` the mean decode iteration (ms), 5 repeats (median used).
simhw costs the same batch on the node (dgx-a100: NVLink for the tensor-parallel all-reduces)
with a KV length for decode halfway through generation (context = prompt, new tokens = output).

ML.ENERGY leaderboard v2 (ml-energy/leaderboard-v2@c3af7f31, A100-SXM4-40GB, vLLM 0.5.4 serving
ShareGPT and code prompts at saturation): mean time per output token against one decode
iteration at the measured mean running batch.

LLM-Inference-Bench (argonne-lcf/LLM-Inference-Bench@4211f5d4 Plots/All_results.csv, A100 rows,
vLLM): one offline ``generate()`` of ``batch`` prompts, input = output = L tokens, at TP 1/2/4;
simhw sums its prefill estimate and L decode iterations (KV from L to 2L, trapezoid rule over
five KV lengths). Argonne's A100s are not named; its Polaris system has A100-SXM4-40GB.

Serving-engine overheads belong to the engine. The spec's ``engine_step_overhead`` /
``engine_per_token`` / ``engine_host_per_layer`` describe Splitwise's eager engine (fitted there);
ML.ENERGY's vLLM 0.5.4 and Argonne's current vLLM are given as the workloads' ``engine:`` block
(:data:`VLLM_054_ENGINE`, :data:`VLLM_V1_ENGINE`, each fitted on its own rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..workload.engines import ENGINES

# A current vLLM (V1 engine, 2025) -- F: fitted on the LLM-Inference-Bench A100 vLLM rows
VLLM_V1_ENGINE = ENGINES["vllm-v1"]
# vLLM 0.5.4 as ML.ENERGY v2 ran it (CUDA graphs for decode, one worker process per GPU fed by the
# driver every iteration) -- F: fitted on the ML.ENERGY A100 TPOT rows
VLLM_054_ENGINE = ENGINES["vllm-0.5.4"]
# ML.ENERGY model names -> simhw built-ins of the same architecture (CodeLlama = Llama-2 layers)
MLENERGY_MODELS = {"meta-llama/Meta-Llama-3.1-8B-Instruct": "llama3-8b",
                   "meta-llama/Meta-Llama-3.1-70B-Instruct": "llama3-70b",
                   "mistralai/Mistral-7B-Instruct-v0.3": "mistral-7b", "google/gemma-2-2b-it": "gemma2-2b",
                   "codellama/CodeLlama-7b-hf": "llama2-7b", "codellama/CodeLlama-13b-hf": "llama2-13b",
                   "codellama/CodeLlama-70b-hf": "llama2-70b", "codellama/CodeLlama-34b-hf": "codellama-34b",
                   "google/gemma-2-9b-it": "gemma2-9b", "google/gemma-2-27b-it": "gemma2-27b",
                   "google/codegemma-1.1-2b": "gemma-2b", "google/codegemma-7b": "gemma-7b",
                   "microsoft/Phi-3-mini-4k-instruct": "phi3-mini", "microsoft/Phi-3-medium-4k-instruct": "phi3-medium",
                   "mistralai/Mistral-Nemo-Instruct-2407": "mistral-nemo-12b",
                   "mistralai/Mistral-Large-Instruct-2407": "mistral-large-123b",
                   "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b",
                   "mistralai/Mixtral-8x22B-Instruct-v0.1": "mixtral-8x22b"}
# the models the engine profile vllm-0.5.4 was fitted on; the others are unfitted checks
MLENERGY_FITTED = ("llama3-8b", "llama3-70b", "mistral-7b", "gemma2-2b", "llama2-7b", "llama2-13b", "llama2-70b")
# Mean prompt tokens of the ML.ENERGY requests: not in the published rows; an assumption (UNVERIFIED)
MLENERGY_PROMPT_TOKENS = 250
# Argonne model names -> simhw built-ins
ARGONNE_MODELS = {"meta-llama/Llama-2-7b-hf": "llama2-7b", "meta-llama/Llama-2-70b-hf": "llama2-70b",
                  "meta-llama/Meta-Llama-3-8B": "llama3-8b", "meta-llama/Meta-Llama-3-70B": "llama3-70b",
                  "mistralai/Mistral-7B-v0.1": "mistral-7b", "mistralai/Mixtral-8x7B-v0.1": "mixtral-8x7b",
                  "Qwen/Qwen2-7B": "qwen2-7b"}


@dataclass(frozen=True)
class E2ERow:
    model: str
    tp: int
    batch: int
    prompt: int
    output: int
    phase: str              # prefill | decode | generate | energy
    measured_s: float       # seconds (energy rows: joules)
    predicted_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0


def splitwise_rows(folder: str | Path, hw="dgx-a100", hardware: str = "a100-80gb") -> list[E2ERow]:
    """Splitwise's prefill and decode-iteration times (``hardware`` rows) against simhw.estimate."""
    import pandas as pd

    from ..cost.estimate import estimate
    from ..spec.load import load_hw
    from ..workload.from_yaml import workload_from_dict

    files = sorted(Path(folder).rglob("perf_model*.csv"))
    if not files:
        raise DataError(f"{folder}: no perf_model*.csv (Splitwise) found.")
    df = pd.concat([pd.read_csv(f) for f in files])
    df = df[df.hardware == hardware]
    if isinstance(hw, str):
        hw = load_hw(hw)
    keys = ["model", "tensor_parallel", "batch_size", "prompt_size", "token_size"]
    med = df.groupby(keys)[["prompt_time", "token_time"]].median().reset_index()
    out: list[E2ERow] = []
    for r in med.itertuples(index=False):
        tp, b, p, o = int(r.tensor_parallel), int(r.batch_size), int(r.prompt_size), int(r.token_size)
        common = {"model": r.model, "dtype": "fp16", "devices": tp, "parallelism": {"tp": tp},
                  "micro_batch": b, "global_batch": b}
        pre = workload_from_dict({**common, "mode": "prefill", "seq_len": p}, "splitwise")
        dec = workload_from_dict({**common, "mode": "decode", "seq_len": p + o,
                                  "decode": {"context_len": p, "new_tokens": o}}, "splitwise")
        out.append(E2ERow(r.model, tp, b, p, o, "prefill", r.prompt_time * 1e-3, estimate(pre, hw).step_time_s))
        out.append(E2ERow(r.model, tp, b, p, o, "decode", r.token_time * 1e-3, estimate(dec, hw).step_time_s))
    return out


# LLM-Inference-Bench framework -> the simhw engine profile (workload/engines.py) fitted on its rows
ARGONNE_ENGINES = {"vLLM": "vllm-v1", "TensorRT-LLM": "trt-llm"}
# Rows left out, with the reason: TensorRT-LLM's Mixtral decodes batch 16 at 10 ms per token on 4 GPUs,
# which needs 2.3 TB/s per GPU for 16-bit weights (all 8 experts active), above the A100's 1.6-2.0 TB/s:
# its weights were not 16-bit, and the rows do not say what they were
ARGONNE_SKIP = {("TensorRT-LLM", "mixtral-8x7b")}


def argonne_rows(folder: str | Path, hw="a100-40gb", framework: str = "vLLM", gpu: str = "a100") -> list[E2ERow]:
    """Whole-batch generate latency (prefill + L decode iterations) of Argonne's ``gpu`` rows of
    ``framework`` (vLLM or TensorRT-LLM, each with its engine profile in :data:`ARGONNE_ENGINES`)."""
    df, hw = _argonne_frame(folder, "All_results*.csv", framework, hw, gpu)
    keys = ["Model", "Num of Hardware", "Input Output Length", "Batch Size"]
    out: list[E2ERow] = []
    for (name, tp, length, b), lat in df.groupby(keys)["Latency"].median().items():
        model = ARGONNE_MODELS[name]
        if (framework, model) in ARGONNE_SKIP:
            continue
        time_s, _ = _generate_cost(model, int(tp), int(length), int(b), hw, ARGONNE_ENGINES[framework])
        out.append(E2ERow(model, int(tp), int(b), int(length), int(length), "generate", float(lat), time_s))
    return out


def argonne_energy_rows(folder: str | Path, hw="a100-40gb", framework: str = "vLLM", gpu: str = "a100") -> list[E2ERow]:
    """GPU energy of the same generate() runs: NVML average power (mW, summed over the GPUs) x latency,
    against simhw's energy (dynamic FLOP and byte energy plus (idle + active) power x time). Rows carry joules
    in measured_s / predicted_s."""
    df, hw = _argonne_frame(folder, "power_results*.csv", framework, hw, gpu)
    out: list[E2ERow] = []
    for r in df.itertuples(index=False):
        name, tp, length, b, lat, power_mw = r[3], int(r[1]), int(r[4]), int(r[5]), float(r[6]), float(r[8])
        model = ARGONNE_MODELS[name]
        _, energy_j = _generate_cost(model, tp, length, b, hw)
        out.append(E2ERow(model, tp, b, length, length, "energy", power_mw * 1e-3 * lat, energy_j))
    return out


def mlenergy_rows(folder: str | Path, hw="a100-40gb", energy: bool = False, gpu: str = "a100") -> list[E2ERow]:
    """ML.ENERGY v2 LLM rows: mean time per output token against one decode iteration at the mean
    running batch, KV length = prompt + half the mean output (engine: :data:`VLLM_054_ENGINE`).
    ``energy=True``: GPU energy per output token instead (``Energy/req`` / ``Avg Output Tokens``,
    NVML, summed over the TP GPUs) against the iteration's energy / batch; rows carry joules.
    ``gpu`` picks the rows whose GPU column names it (a100, h100)."""
    import pandas as pd

    from ..cost.estimate import estimate
    from ..spec.load import load_hw
    from ..workload.from_yaml import workload_from_dict

    files = sorted(Path(folder).rglob("llm_text_generation*.csv"))
    if not files:
        raise DataError(f"{folder}: no llm_text_generation*.csv (ML.ENERGY leaderboard v2) found.")
    df = pd.concat([pd.read_csv(f) for f in files])
    df = df[df["GPU"].str.upper().str.contains(gpu.upper()) & df["Model"].isin(MLENERGY_MODELS) & (df["PP"] == 1)]
    hw = load_hw(hw) if isinstance(hw, str) else hw
    out: list[E2ERow] = []
    for r in df.to_dict("records"):
        model, tp = MLENERGY_MODELS[r["Model"]], int(r["TP"])
        b, output = max(1, round(r["Avg BS (reqs)"])), float(r["Avg Output Tokens"])
        kv = int(MLENERGY_PROMPT_TOKENS + output / 2)
        wl = workload_from_dict({"model": model, "mode": "decode", "dtype": "bf16", "devices": tp,
                                 "parallelism": {"tp": tp}, "seq_len": kv + 1, "micro_batch": b,
                                 "global_batch": b, "decode": {"context_len": kv, "new_tokens": 1},
                                 "engine": "vllm-0.5.4"}, "ml.energy")
        est = estimate(wl, hw)
        if energy:
            out.append(E2ERow(model, tp, b, kv, int(output), "energy", float(r["Energy/req (J)"]) / output,
                              est.energy_j / b))
        else:
            out.append(E2ERow(model, tp, b, kv, int(output), "decode", float(r["Avg TPOT (s)"]), est.step_time_s))
    return out


def mlenergy_energy_table(rows: list[E2ERow]) -> tuple[str, str]:
    """(markdown section for REPORT.md, one summary row) for GPU energy per output token."""
    return _section(
        "ML.ENERGY v2 GPU energy per output token (vLLM 0.5.4, A100-SXM4-40GB)",
        "NVML energy of the steady state / output tokens (summed over the TP GPUs) against simhw's energy of "
        "the same decode iteration / batch: FLOPs x energy per FLOP, HBM bytes x (device + on-chip transport "
        "energy per byte), and (idle + active) power x iteration time, engine gaps included. power.active and "
        "energy.transport were fitted on these rows and the LLM-Inference-Bench power rows together.",
        rows, "ml.energy v2 (vLLM 0.5.4)", "end-to-end GPU energy per output token",
        notes="Fitted models' chat rows (Llama-3.1, Mistral, Gemma-2) come out within a few per cent. The "
              "CodeLlama code rows come out 15-30% low: simhw leaves out the prefill energy of each request, and "
              "code prompts are longer than the 250 tokens assumed. CodeGemma 2B comes out 67% high: at batches "
              "of 500-1500 its host-side per-sequence work dominates and the GPU draws about 120 W, less than "
              "the idle + active 160 W simhw charges while it waits. Mixtral and Mistral Large at TP 4-8 come out "
              "25-30% high.")


def mlenergy_table(rows: list[E2ERow]) -> tuple[str, str]:
    """(markdown section for REPORT.md, one summary row for the accuracy table)."""
    fitted = [r for r in rows if r.model in MLENERGY_FITTED]
    others = [r for r in rows if r.model not in MLENERGY_FITTED]
    split = " ".join(f"{name}: {len(rs)} rows, median {100 * m:.1f}%, p90 {100 * q:.1f}%, bias {100 * b:+.1f}%."
                     for name, rs in (("Models the profile was fitted on", fitted), ("Other models (unfitted)", others))
                     if rs for m, q, b in [_stats(rs)])
    return _section(
        "ML.ENERGY v2 time per output token (vLLM 0.5.4, A100-SXM4-40GB)",
        "Mean TPOT of vLLM 0.5.4 serving at saturation (ml-energy/leaderboard-v2@c3af7f31) against one decode "
        f"iteration at the mean running batch; KV length = {MLENERGY_PROMPT_TOKENS} prompt tokens (an assumption: "
        "the rows do not give the prompt length) + half the mean output. Engine: vLLM 0.5.4 as the workload's "
        f"engine: block (step_overhead {VLLM_054_ENGINE['step_overhead']}, per_sequence "
        f"{VLLM_054_ENGINE['per_sequence']}, per_worker {VLLM_054_ENGINE['per_worker']} for each GPU beyond the "
        f"first, no host floor: CUDA graphs; all_reduce {VLLM_054_ENGINE['all_reduce']}: the engine's own NVLink "
        f"all-reduce, cost/comm.py), fitted on the rows of {', '.join(MLENERGY_FITTED)} (refitted with that "
        "all-reduce: the same values as with NCCL's); prefills that vLLM interleaves are not modelled.",
        rows, "ml.energy v2 (vLLM 0.5.4)", "end-to-end time per output token", notes=split)


def _argonne_frame(folder: str | Path, pattern: str, framework: str, hw, gpu: str = "a100"):
    """(``gpu`` rows of ``framework`` for the models simhw has, the loaded spec)."""
    import pandas as pd

    from ..spec.load import load_hw

    files = sorted(Path(folder).rglob(pattern))
    if not files:
        raise DataError(f"{folder}: no {pattern} (LLM-Inference-Bench) found.")
    df = pd.concat([pd.read_csv(f) for f in files])
    df = df[(df["Hardware"] == f"Nvidia {gpu.upper()} GPU") & (df["Framework"] == framework) & df["Model"].isin(ARGONNE_MODELS)]
    return df, (load_hw(hw) if isinstance(hw, str) else hw)


def _generate_cost(model: str, tp: int, length: int, b: int, hw, engine="vllm-v1") -> tuple[float, float]:
    """(time, energy) of one generate(): prefill of b x length tokens, then length decode iterations
    with KV from length to 2 x length (trapezoid rule over five KV lengths)."""
    import numpy as np

    from ..cost.estimate import estimate
    from ..workload.from_yaml import workload_from_dict

    common = {"model": model, "dtype": "fp16", "devices": tp, "parallelism": {"tp": tp},
              "micro_batch": b, "global_batch": b, "engine": engine}
    pre = estimate(workload_from_dict({**common, "mode": "prefill", "seq_len": length}, "argonne"), hw)
    steps = np.unique(np.linspace(0, length - 1, 5).round().astype(int))
    dec = [estimate(workload_from_dict({**common, "mode": "decode", "seq_len": length + int(t) + 1,
                                        "decode": {"context_len": length + int(t), "new_tokens": 1}}, "argonne"), hw)
           for t in steps]
    mean = (lambda v: float(np.trapezoid(v, steps)) / (steps[-1] - steps[0])) if len(steps) > 1 else (lambda v: v[0])
    return (pre.step_time_s + mean([d.step_time_s for d in dec]) * length,
            pre.energy_j + mean([d.energy_j for d in dec]) * length)


def _stats(rows: list[E2ERow]) -> tuple[float, float, float]:
    """(median |error|, p90 |error|, median signed error) of ``rows``."""
    from .stats import percentile

    ape = [abs(r.error) for r in rows]
    return percentile(ape, 50), percentile(ape, 90), percentile([r.error for r in rows], 50)


def _group_lines(rows: list[E2ERow], key) -> list[str]:
    """One markdown row per group (key(row) -> tuple of cells): the cells, n, median, p90, bias."""
    groups: dict[tuple, list[E2ERow]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = []
    for cells, rs in sorted(groups.items()):
        med, p90, bias = _stats(rs)
        out.append("| " + " | ".join(str(c) for c in cells) +
                   f" | {len(rs)} | {100 * med:.1f}% | {100 * p90:.1f}% | {100 * bias:+.1f}% |")
    return out


def _closing(rows: list[E2ERow], source: str, what: str, target: str = "") -> tuple[list[str], str]:
    """(overall sentence for REPORT.md, summary row for the accuracy table)."""
    med, p90, bias = _stats(rows)
    stats = f"{100 * med:.1f}% | {100 * p90:.1f}% | {100 * bias:+.1f}% |"
    return (["", f"All {len(rows)} configurations: median {100 * med:.1f}%, p90 {100 * p90:.1f}%, "
                 f"bias {100 * bias:+.1f}%{target}."],
            f"| {source} | {what} | {len(rows)} | {stats}")


_MODEL_TP = ("| model | TP | n | median error | p90 error | bias |", "| --- | ---: | ---: | ---: | ---: | ---: |")


def _section(title: str, text: str, rows: list[E2ERow], source: str, what: str, *, key=lambda r: (r.model, r.tp),
             header: tuple[str, str] = _MODEL_TP, notes: str = "", target: str = "") -> tuple[str, str]:
    """(REPORT.md section: title, text, one table row per group of ``key``, notes, overall sentence;
    the summary row for the accuracy table)."""
    lines = [f"## End to end: {title}", "", text, "", *header, *_group_lines(rows, key)]
    if notes:
        lines += ["", notes]
    tail, summary = _closing(rows, source, what, target)
    return "\n".join(lines + tail), summary


def argonne_table(rows: list[E2ERow], framework: str = "vLLM") -> tuple[str, str]:
    """(markdown section for REPORT.md, one summary row for the accuracy table)."""
    name = ARGONNE_ENGINES[framework]
    e = ENGINES[name]
    return _section(
        f"LLM-Inference-Bench ({framework}, A100)",
        f"Whole-batch {framework} generate latency from argonne-lcf/LLM-Inference-Bench@4211f5d4 (A100 rows, "
        "input = output = L tokens, median of repeated keys) against simhw's prefill estimate plus L decode "
        f"iterations (KV from L to 2L) on a100-40gb, with the engine profile `{name}` as the workload's engine: "
        f"block (step_overhead {e['step_overhead']}, per_sequence {e['per_sequence']}, per_worker "
        f"{e['per_worker']} for each GPU beyond the first, host_per_layer {e['host_per_layer']}: CUDA graphs; "
        f"all_reduce {e['all_reduce']}: the engine's own NVLink all-reduce, cost/comm.py), fitted on these rows; "
        "the spec's default engine (Splitwise's, eager) is far heavier.",
        rows, f"argonne ({framework})", "end-to-end generate (prefill + L decode steps)")


def argonne_energy_table(rows: list[E2ERow]) -> tuple[str, str]:
    """(markdown section for REPORT.md, one summary row) for the GPU-energy rows."""
    lines = ["## End to end: GPU energy of vLLM generate() (LLM-Inference-Bench power rows, A100)", "",
             "NVML average power x latency of the same generate() runs (power_results.csv, TP 1) against "
             "simhw's energy: FLOPs x energy per FLOP + HBM bytes x (device + on-chip transport) energy per byte + "
             "(idle + active) power x time.", "",
             "| model | batch | L | measured (kJ) | simhw (kJ) | error |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: (r.model, r.batch)):
        lines.append(f"| {r.model} | {r.batch} | {r.prompt} | {r.measured_s / 1e3:.2f} | {r.predicted_s / 1e3:.2f} | "
                     f"{100 * r.error:+.0f}% |")
    lines += ["", "The larger misses follow simhw's time for the same run (Llama-2-7B at batch 32 and 64: 10% and "
              "22% fast). Measured power rises with batch size (220 to 345 W) more than simhw's (about 235 "
              "to 270 W)."]
    _, summary = _closing(rows, "argonne (vLLM)", "end-to-end GPU energy of generate")
    return "\n".join(lines), summary


def splitwise_table(rows: list[E2ERow]) -> tuple[str, str]:
    """(markdown section for REPORT.md, one summary row for the accuracy table)."""
    long = [r for r in rows if r.phase == "prefill" and r.batch * r.prompt >= 4096]
    fast = sorted(-r.error for r in long if r.error < 0)
    one = {r.prompt: r.prompt / r.measured_s for r in rows            # single-prompt prefills
           if r.model == "llama2-70b" and r.tp == 8 and r.phase == "prefill" and r.batch == 1}
    drop = (f" (Llama-2-70B at TP 8, one prompt: {max(one.values()):,.0f} tokens/s at best, "
            f"{one[max(one)]:,.0f} at {max(one)} tokens)" if one else "")
    notes = (f"{len(fast)} of the {len(long)} prefills of 4096 tokens or more come out {100 * fast[0]:.0f}-"
             f"{100 * fast[-1]:.0f}% fast (median {100 * fast[len(fast) // 2]:.0f}%): the measured tokens per "
             f"second peak near 2048 tokens per iteration and fall beyond{drop}, which neither the GEMMs nor "
             "attention explain; the die's warming over a prefill of seconds (cost/power.py) explains a part."
             ) if fast else ""
    return _section(
        "Splitwise (DGX-A100)",
        "simhw.estimate in prefill / decode mode against Mutinifni/splitwise-sim@8f99e7dc perf_model.csv "
        "(a100-80gb rows, median of 5 repeats); decode uses a KV length halfway through generation. "
        "Engine overheads: the spec's engine_step_overhead, engine_per_token and engine_host_per_layer "
        "(fitted on these rows).",
        rows, "splitwise-sim", "end-to-end prefill + decode step", key=lambda r: (r.model, r.tp, r.phase),
        header=("| model | TP | phase | n | median error | p90 error | bias |",
                "| --- | ---: | --- | ---: | ---: | ---: | ---: |"),
        notes=notes,
        target=" (target: median 10%)")