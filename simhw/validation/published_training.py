"""End to end: published training throughput with low-precision linears (FP8, MXFP8, NVFP4) and
bf16 baselines, against :func:`simhw.estimate` (validate/data/published-training/: Megatron-Bridge's
performance summaries and torchao's float8 README, each row with its source). simhw costs the
row's model, batch, parallelism and recipe on the named node spec and compares its step time with
global_batch x seq_len / (tokens/s/GPU x GPUs). No constant is fitted on these rows.
"""
from __future__ import annotations

from pathlib import Path

from .e2e import E2ERow, _closing
from .training import throughput_rows

_FAMILY = {"megatron": "Megatron-Bridge", "torchao": "torchao / torchtitan"}


def published_workload(row: dict) -> dict:
    """The workload dict of one throughput row."""
    tp, pp, vp = (int(row[k]) for k in ("tp", "pp", "vp"))
    par = {"tp": tp, "pp": pp, "cp": int(row["cp"]), "sp": tp > 1, "tp_overlap": row.get("tp_overlap") == "true"}
    if vp > 1:
        par.update(interleave=vp, schedule="interleaved")
    return {"name": f"{row['model']}-{row['precision']}", "model": row["model"], "mode": "train", "dtype": "bf16",
            "optimizer": "adamw", "framework": row["framework"], "precision": row["precision"],
            "seq_len": int(row["seq_len"]), "micro_batch": int(row["micro_batch"]),
            "global_batch": int(row["global_batch"]), "devices": int(row["gpus"]), "parallelism": par,
            "memory": {"recompute": row["recompute"], "zero_stage": int(row["zero_stage"]),
                       "offload_layers": int(row.get("offload_layers") or 0)}}


def published_training_rows(path: str | Path) -> list[tuple[dict, E2ERow]]:
    """(the CSV row, its E2ERow) per line of ``path`` (training.throughput_rows), each on its node."""
    import simhw

    return throughput_rows(path, "validate/data/published-training/", published_workload,
                           lambda row: simhw.load_hw(row["system"]), lambda row: f"{row['model']} {row['precision']}")


def published_training_table(rows: list[tuple[dict, E2ERow]]) -> tuple[str, str]:
    """(REPORT.md section, the accuracy table's summary rows: one per system)."""
    lines = ["## End to end: low-precision training throughput (Megatron-Bridge, torchao)", "",
             "simhw.estimate in training mode with the row's `precision` recipe (FP8 current scaling, MXFP8, NVFP4; "
             "`none` = bf16) on the named node spec, against the published tokens/s/GPU "
             "(validate/data/published-training/ names each table). Nothing is fitted on these rows; the B200 and "
             "GB200 specs are unmeasured by simhw.", "",
             "| source | model | system | GPUs | precision | TP / PP / VP | measured tokens/s/GPU | "
             "simhw tokens/s/GPU | error (step time) |",
             "| --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for row, r in rows:
        measured, predicted = (r.batch * r.prompt / (t * r.output) for t in (r.measured_s, r.predicted_s))
        lines.append(f"| {row['source']} | {row['model']} | {row['system']} | {r.output} | {row['precision']} | "
                     f"{row['tp']} / {row['pp']} / {row['vp']} | {measured:,.0f} | {predicted:,.0f} | "
                     f"{100 * r.error:+.1f}% |")
    summaries = []
    for family, system in dict.fromkeys((_FAMILY[row["source"].split("-")[0]], row["system"]) for row, _ in rows):
        sub = [r for row, r in rows if row["system"] == system and _FAMILY[row["source"].split("-")[0]] == family]
        tail, summary = _closing(sub, f"{family} ({system})", "end-to-end training step, FP8 / FP4 linears")
        lines += [line.replace("All ", f"{family} on {system}: all ", 1) for line in tail]
        summaries.append(summary)
    ratios = _speedups(rows)
    if ratios:
        lines += ["", "Speed-ups between rows of one configuration (measured / simhw): " + "; ".join(ratios) + "."]
    return "\n".join(lines), "\n".join(summaries)


_LAYOUT = ("source", "model", "gpus", "micro_batch", "tp", "pp", "vp", "zero_stage", "offload_layers")


def _speedups(rows: list[tuple[dict, E2ERow]]) -> list[str]:
    """Throughput ratios of rows that differ only in their recipe, or only in their system (the
    same recipe and layout on two machines), measured and simhw's."""
    out = []
    for vary, fixed in (("precision", "system"), ("system", "precision")):
        keyed: dict[tuple, dict[str, E2ERow]] = {}
        for row, r in rows:
            key = tuple(str(row.get(k, "")) for k in _LAYOUT) + (row[fixed],)
            keyed.setdefault(key, {})[row[vary]] = r
        for key, by in keyed.items():
            names = list(by)
            for a, b in zip(names, names[1:]):
                m = by[a].measured_s / by[b].measured_s
                p = by[a].predicted_s / by[b].predicted_s
                where = f"on {key[-1]}" if vary == "precision" else f"in {key[-1]}"
                out.append(f"{key[1]} {where}, {b} over {a}: {m:.2f}x / {p:.2f}x")
    return out
