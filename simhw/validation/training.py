"""End to end: published training throughput against :func:`simhw.estimate` in training mode.

llm-foundry (mosaicml/llm-foundry@061f2c7c scripts/train/benchmarking/README.md; ten rows in
validate/data/llm-foundry/throughput.csv with their source): MPT-1B to 30B trained with FSDP
(ZeRO-3) on one 8-GPU node, bf16, A100 80GB and H100 80GB, measured tokens per second per GPU.
simhw costs the same model, batch, micro-batch and activation checkpointing (FSDP's block
checkpointing = full recompute) on the DGX node and compares its step time with the measured one,
global_batch x seq_len / (tokens/s/GPU x GPUs). No constant is fitted on these rows.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DataError
from .e2e import E2ERow

# scripts/train/yamls/pretrain/mpt-*.yaml: (d_model, n_heads, n_layers); expansion_ratio 4, vocab 50368
MPT = {"mpt-1b": (2048, 16, 24), "mpt-3b": (2560, 20, 32), "mpt-7b": (4096, 32, 32),
       "mpt-13b": (5120, 40, 40), "mpt-30b": (7168, 64, 48)}
NODES = {"a100_80gb": "dgx-a100", "h100_80gb": "dgx-h100"}


def mpt_workload(row: dict) -> dict:
    """The workload dict of one throughput row (an MPT model under FSDP FULL_SHARD)."""
    d, heads, layers = MPT[row["model"]]
    return {"name": f"{row['model']}-{row['gpu']}", "mode": "train", "dtype": "bf16", "optimizer": "adam",
            "model": {"layers": layers, "hidden": d, "heads": heads, "ffn": 4 * d, "vocab": 50368,
                      "activation": "gelu", "norm": "layernorm", "position": "alibi", "tied_embeddings": True,
                      "bias": False},
            "seq_len": int(row["seq_len"]), "micro_batch": int(row["micro_batch"]),
            "global_batch": int(row["global_batch"]), "devices": int(row["gpus"]),
            "parallelism": {"tp": 1, "pp": 1},
            "memory": {"recompute": "full" if row["activation_checkpointing"] == "true" else "none",
                       "flash_attention": True, "zero_stage": 3}}


def throughput_rows(path: str | Path, folder: str, workload_of, hw_of, name_of) -> list[tuple[dict, E2ERow]]:
    """(CSV row, E2ERow) per line of a published throughput table: the row's workload
    (``workload_of(row)``, a workload dict) estimated on ``hw_of(row)``, its seconds per optimizer
    step against the measured global_batch x seq_len / (tokens_per_s_per_gpu x GPUs). ``prompt``
    holds the sequence length, ``output`` the GPU count; ``folder`` names where the file ships."""
    import simhw
    from ..workload.from_yaml import workload_from_dict

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found; it ships in {folder}.")
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            wl = workload_from_dict(workload_of(row), str(path))
            measured = wl.global_batch * wl.seq_len / (float(row["tokens_per_s_per_gpu"]) * wl.devices)
            predicted = simhw.estimate(wl, hw_of(row)).step_time_s
            out.append((row, E2ERow(name_of(row), wl.parallelism.tp, wl.global_batch, wl.seq_len, wl.devices,
                                    "train", measured, predicted)))
    return out


def llm_foundry_rows(path: str | Path, nodes: dict | None = None) -> list[E2ERow]:
    """One row per throughput line (throughput_rows). ``nodes`` maps a GPU column value to the node
    spec to cost it on (default: NODES, loaded by name)."""
    import simhw

    return [r for _, r in throughput_rows(path, "validate/data/llm-foundry/", mpt_workload,
                                          lambda row: (nodes or {}).get(row["gpu"]) or simhw.load_hw(NODES[row["gpu"]]),
                                          lambda row: f"{row['model']} {row['gpu']}")]


def cool_a100_node():
    """dgx-a100 with a die that does not warm (hot_flop_factor 1): the A100's factor is carried over
    from the H100, so the report shows what the rows would be without it."""
    import dataclasses

    import simhw

    node = simhw.load_hw(NODES["a100_80gb"])
    return dataclasses.replace(node, device=dataclasses.replace(node.device, hot_flop_factor=1.0))


def llm_foundry_table(rows: list[E2ERow], cool_rows: list[E2ERow] | None = None) -> tuple[str, str]:
    """(REPORT.md section, the accuracy table's summary rows: one per GPU). ``cool_rows``: the A100
    rows costed on :func:`cool_a100_node`, reported as a what-if."""
    import simhw
    from .e2e import _closing

    hot = {gpu: simhw.load_hw(node).device.hot_flop_factor for gpu, node in NODES.items()}
    lines = ["## End to end: training throughput (llm-foundry MPT, one 8-GPU node, FSDP)", "",
             "simhw.estimate in training mode (ZeRO-3, bf16, FlashAttention; FSDP activation checkpointing = full "
             "recompute) on dgx-a100 / dgx-h100 against mosaicml/llm-foundry@061f2c7c's published throughput "
             "(validate/data/llm-foundry/). Nothing is fitted on these rows. Training is priced in the steady "
             f"state: the A100's hot_flop_factor is {hot['a100_80gb']:g}, the H100's {hot['h100_80gb']:g}.", "",
             "| model | GPU | measured tokens/s/GPU | simhw tokens/s/GPU | error (step time) |",
             "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        name, gpu = r.model.split()
        measured, predicted = (r.batch * r.prompt / (t * r.output) for t in (r.measured_s, r.predicted_s))
        lines.append(f"| {name} | {gpu} | {measured:,.0f} | {predicted:,.0f} | {100 * r.error:+.1f}% |")
    summaries = []
    for gpu in sorted({r.model.split()[1] for r in rows}):
        sub = [r for r in rows if r.model.endswith(gpu)]
        tail, summary = _closing(sub, f"llm-foundry (MPT, 8x {gpu.replace('_', ' ').upper()})",
                                 "end-to-end training step (FSDP)")
        lines += [line.replace("All ", f"{gpu}: all ", 1) for line in tail]
        summaries.append(summary)
    cool = [r for r in cool_rows or () if r.model.endswith("a100_80gb")]
    if cool:
        errs = ", ".join(f"{r.model.split()[0]} {100 * r.error:+.1f}%" for r in cool)
        tail, _ = _closing(cool, "", "")
        lines += ["", "The A100's hot_flop_factor is the H100's, carried over (T). With a die that does not warm "
                  f"(factor 1) the A100 rows would come out at {errs}; " + tail[-1].replace("All", "all", 1)]
    return "\n".join(lines), "\n".join(summaries)


def run_framework(row: dict) -> str:
    """The simhw framework that describes a train_e2e.py row: ``compiled`` for its --compile runs,
    else ``eager``."""
    return "compiled" if row.get("compiled") == "true" else "eager"


def own_workload(row: dict, framework: str | None = None) -> dict:
    """The workload dict of one row of simhw's own single-GPU runs (validate/gpu/train_e2e.py: a
    decoder with LayerNorm, a GELU MLP of 4x hidden, no biases, no position embedding, an untied
    head; bf16 autocast and torch.optim.AdamW), as ``framework`` (default: the run's own,
    :func:`run_framework`); the row's ``optimizer_impl`` (foreach when absent) is the optimizer kernel."""
    framework = framework or run_framework(row)
    layers, hidden, heads, vocab, seq, batch = (int(row[k]) for k in ("layers", "hidden", "heads", "vocab",
                                                                        "seq_len", "micro_batch"))
    llama = row.get("arch") == "llama"     # RMSNorm and a SwiGLU MLP (train_e2e.py --arch llama)
    ffn = int(row.get("ffn") or 4 * hidden)
    kernel = {"optimizer_kernel": row.get("optimizer_impl") or "foreach"} if framework != "fused" else {}
    return {"name": f"{'llama' if llama else 'gpt'}-{layers}x{hidden}", "mode": "train", "dtype": "bf16",
            "optimizer": "adamw", "framework": framework, **kernel,
            "model": {"layers": layers, "hidden": hidden, "heads": heads, "ffn": ffn, "vocab": vocab,
                      "activation": "swiglu" if llama else "gelu", "norm": "rmsnorm" if llama else "layernorm",
                      "position": "none", "tied_embeddings": False, "bias": False},
            "seq_len": seq, "micro_batch": batch, "global_batch": batch, "devices": 1,
            "parallelism": {"tp": 1, "pp": 1},
            "memory": {"recompute": "full" if row.get("activation_checkpointing") == "true" else "none",
                       "flash_attention": True, "zero_stage": 0}}


def own_training_rows(path: str | Path, spec: str, framework: str | None = None) -> list[tuple[E2ERow, float, float]]:
    """(row, measured peak allocated bytes, simhw's peak bytes) per model of a train_e2e*.csv,
    costed on ``spec`` as ``framework`` (default: each run's own): step seconds in the row (phase
    ``train``)."""
    import simhw
    from ..workload.from_yaml import workload_from_dict

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found (validate/gpu/train_e2e.py writes it).")
    hw = simhw.load_hw(spec)
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            wl = workload_from_dict(own_workload(row, framework), str(path))
            est = simhw.estimate(wl, hw)
            e2e = E2ERow(wl.name, 1, wl.micro_batch, wl.seq_len, 1, "train", float(row["step_s"]), est.step_time_s)
            out.append((e2e, float(row["peak_allocated_bytes"]), est.memory.peak_bytes))
    return out


def own_training_table(runs: dict[str, tuple[str, list, list]]) -> tuple[str, str]:
    """(REPORT.md section, accuracy-table rows) for simhw's own single-GPU training runs; ``runs``:
    run label -> (its framework, own_training_rows as that framework, the same as fused)."""
    from .e2e import _closing

    lines = ["## End to end: training steps on one GPU (simhw's own runs)", "",
             "validate/gpu/train_e2e.py on one H100 and one H200 (validate/data/*-2026-11-26/train_e2e*.csv): GPT-like "
             "decoders of 134 M to 2.7 B parameters, seq 2048, bf16 autocast over fp32 weights, torch.optim.AdamW; the "
             "median step time of five. Eager PyTorch with the default foreach AdamW (train_e2e.csv), with every "
             "block under torch.utils.checkpoint (train_e2e-checkpoint.csv, costed with memory.recompute: full), as "
             "Llama-style blocks (RMSNorm, SwiGLU MLP of 8/3 x hidden; train_e2e-llama.csv), with AdamW(fused=True) "
             "(train_e2e-fusedadam.csv, costed with optimizer_kernel: fused), and with each block and the loss under "
             "torch.compile and fused AdamW (train_e2e*-fusedadam-compiled.csv, H200). Each run is costed by "
             "simhw.estimate as the framework that describes it (`framework: eager`, workload/eager.py: autocast "
             "casts, fp32 residual stream, aten's norm and loss kernels, torch.optim's update; `framework: compiled`: "
             "the same casts around Inductor's fused kernels) and, for comparison, as the default `framework: fused`. "
             "Nothing is fitted on the step times; the compiled framework's logit memory (the bf16 logits only) was "
             "read off these runs' peak memory. Peak memory: torch.cuda.max_memory_allocated against simhw's memory "
             "model.", "",
             "| run | model | measured step | simhw, its framework | error | simhw fused | error | peak memory error |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    summaries, tails = [], []
    for label, (framework, own, fused) in runs.items():
        for (r, peak, model_peak), (f, _, _) in zip(own, fused):
            lines.append(f"| {label} | {r.model} | {1e3 * r.measured_s:.1f} ms | {1e3 * r.predicted_s:.1f} ms "
                         f"({framework}) | {100 * r.error:+.1f}% | {1e3 * f.predicted_s:.1f} ms | {100 * f.error:+.1f}% | "
                         f"{100 * (model_peak / peak - 1):+.1f}% |")
        pairs = ((own, framework),) + (((fused, "fused"),) if framework != "fused" else ())
        for rows, name in pairs:
            tail, summary = _closing([r for r, _, _ in rows], f"simhw-gpu ({label}, 1 GPU)",
                                     f"end-to-end training step, framework: {name}")
            tails += [line.replace("All ", f"{label}, {name}: all ", 1) for line in tail]
            summaries.append(summary)
    return "\n".join(lines + tails), "\n".join(summaries)
