"""Small builders shared by tests."""
from __future__ import annotations

from simhw.workload.from_yaml import workload_from_dict

# Korthikanti et al. 2022 Table 3 (seed-targets §1d): name -> (heads, hidden, layers, tp, pp, gbatch)
TABLE3 = {
    "gpt-22b": (64, 6144, 48, 8, 1, 4, 4),
    "gpt3-175b": (96, 12288, 96, 8, 8, 64, 1),
    "mt-nlg-530b": (128, 20480, 105, 8, 35, 280, 1),
    "gpt-1t": (160, 25600, 128, 8, 64, 512, 1),
}


def table3_workload(name: str, **memory):
    heads, hidden, layers, tp, pp, gbatch, micro = TABLE3[name]
    par = {"tp": tp, "pp": pp, "sp": memory.pop("sp", False)}
    return workload_from_dict({"model": name, "mode": "train", "seq_len": 2048, "global_batch": gbatch,
                               "micro_batch": micro, "devices": tp * pp, "parallelism": par,
                               "memory": {"flash_attention": False, **memory}})


def wl(**raw):
    base = {"model": "llama2-7b", "mode": "train", "seq_len": 2048, "micro_batch": 1, "global_batch": 8,
            "devices": 8}
    base.update(raw)
    return workload_from_dict(base)
