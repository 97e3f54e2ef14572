"""End-to-end training step against llm-foundry's published MPT throughput (validate/data/llm-foundry/,
mosaicml/llm-foundry@061f2c7c scripts/train/benchmarking/README.md): 1B-30B, 8 GPUs, FSDP, bf16.
Nothing is fitted on these rows. The bands sit just above today's errors: simhw is fast on almost
every row (FSDP frameworks lose time simhw does not model), more on H100, whose runs are from 2023
software."""
from pathlib import Path

import pytest

from simhw.validation.training import MPT, llm_foundry_rows, llm_foundry_table, mpt_workload
from simhw.workload.from_yaml import workload_from_dict

DATA = Path(__file__).resolve().parents[2] / "validate" / "data" / "llm-foundry" / "throughput.csv"


def test_an_mpt_row_becomes_its_workload():
    row = {"model": "mpt-7b", "gpu": "a100_80gb", "gpus": "8", "seq_len": "2048", "micro_batch": "6",
           "grad_accum": "2", "global_batch": "96", "activation_checkpointing": "false"}
    wl = workload_from_dict(mpt_workload(row))
    assert (wl.model.hidden, wl.model.heads, wl.model.layers, wl.model.ffn) == (4096, 32, 32, 16384)
    assert wl.micro_batch == 6 and wl.global_batch == 96 and wl.devices == 8 and wl.seq_len == 2048
    assert wl.memory.zero_stage == 3 and wl.memory.recompute.value == "none"
    assert workload_from_dict(mpt_workload({**row, "activation_checkpointing": "true"})).memory.recompute.value == "full"
    assert set(MPT) == {"mpt-1b", "mpt-3b", "mpt-7b", "mpt-13b", "mpt-30b"}


@pytest.fixture(scope="module")
def rows():
    return llm_foundry_rows(DATA)


@pytest.mark.parametrize("gpu, median, worst", [("a100_80gb", 0.11, 0.17), ("h100_80gb", 0.33, 0.38)])
def test_training_step_error_bands(rows, gpu, median, worst):
    errors = sorted(abs(r.error) for r in rows if r.model.endswith(gpu))
    assert len(errors) == 5
    print(gpu, [f"{e:.3f}" for e in errors])
    assert errors[2] <= median and errors[-1] <= worst


def test_the_report_section_lists_every_row(rows):
    section, summary = llm_foundry_table(rows)
    assert section.count("| mpt-") == 10 and len(summary.splitlines()) == 2
    assert "hot_flop_factor is 1.76, the H100's 1.76" in section and "does not warm" not in section


def test_the_cool_a100_what_if_is_faster_on_every_a100_row(rows):
    from simhw.validation.training import cool_a100_node

    node = cool_a100_node()
    assert node.device.hot_flop_factor == 1.0
    cool = llm_foundry_rows(DATA, {"a100_80gb": node})
    for hot, cold in zip(rows, cool):
        if hot.model.endswith("a100_80gb"):
            assert cold.predicted_s < hot.predicted_s
        else:
            assert cold.predicted_s == hot.predicted_s
    section, _ = llm_foundry_table(rows, cool)
    assert "does not warm" in section and "mpt-30b" in section.split("does not warm")[1]
