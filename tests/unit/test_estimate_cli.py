"""The main job: `simhw estimate` on every shipped example, in every format."""
import json
from pathlib import Path

import pytest

from simhw.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "workloads").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_estimates(path, capsys):
    # an FP8 / FP4 recipe needs tensor cores of its format, which the A100 lacks
    older, newer = ("h100", "b200") if "\nprecision:" in path.read_text() else ("a100", "h100")
    assert main(["estimate", str(path), "--hw", older, "--hw", newer, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "simhw.estimate/1"
    for r in data["results"]:
        assert r["step_time_s"] > 0 and r["tokens_per_s"] > 0 and r["energy_j"] > 0
        m = r["memory"]
        parts = sum(m[k] for k in ("parameters_bytes", "gradients_bytes", "optimizer_bytes",
                                   "activations_bytes", "kv_cache_bytes", "logits_bytes"))
        assert parts == pytest.approx(m["peak_bytes"])
        assert sum(r["time_breakdown_s"].values()) == pytest.approx(r["step_time_s"], rel=1e-6)
    a100, h100 = data["results"]     # (or h100, b200)
    assert h100["step_time_s"] < a100["step_time_s"]


def test_table_fits_100_columns(capsys):
    assert main(["estimate", str(ROOT / "workloads/llama2-7b-train.yaml"), "--hw", "a100", "--hw", "h100",
                 "--hw", "h200"]) == 0
    out = capsys.readouterr().out
    assert "MFU" in out and max(len(line) for line in out.splitlines()) <= 100


def test_ops_listing_and_csv(capsys, tmp_path):
    wl = str(ROOT / "workloads/llama2-70b-decode.yaml")
    assert main(["estimate", wl, "--hw", "a100", "--ops", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ops = data["results"][0]["ops"]
    assert {"name", "kind", "phase", "layer", "flops", "bytes", "intensity", "bound", "time_s", "energy_j"} <= set(ops[0])
    assert any(o["kind"] == "attention" and o["bound"] == "memory" for o in ops)   # decode attention is memory-bound
    out = tmp_path / "r.csv"
    assert main(["estimate", wl, "--hw", "a100", "--format", "csv", "-o", str(out)]) == 0
    assert out.read_text().startswith("hardware,")


def test_compare(capsys):
    assert main(["compare", str(ROOT / "workloads/llama2-7b-train.yaml"), "--hw", "a100", "--hw", "h100"]) == 0
    assert "speed-up" in capsys.readouterr().out


def test_python_api_frame():
    import simhw
    wl = simhw.load_workload(ROOT / "workloads/gemma2-2b-train.yaml")
    res = simhw.estimate(wl, simhw.load_hw("a100"))
    frame = res.to_frame()
    assert frame.loc[0, "step_time_s"] == res.step_time_s
    assert frame.loc[0, "memory.peak_bytes"] == res.memory.peak_bytes
    with pytest.raises(Exception):
        res.step_time_s = 1.0     # frozen


DECODE = ("name: t\nversion: 1\nmodel: llama2-7b\nmode: decode\nseq_len: 2048\nglobal_batch: 8\n"
          "micro_batch: 8\ndevices: 1\ndecode: {context_len: 2048, new_tokens: 128}\n")


def test_engine_bound_serving_gets_a_note(tmp_path, capsys):
    """A serving workload that names no engine, spending most of an iteration in the spec's default
    (eager) engine, is told so on stderr; naming an engine, or a GPU-bound case, prints nothing."""
    path = tmp_path / "decode.yaml"
    path.write_text(DECODE)
    assert main(["estimate", str(path), "--hw", "a100", "--hw", "h100"]) == 0
    err = capsys.readouterr().err
    assert "note: on h100-sxm5-80gb the spec's default serving engine" in err and "a100-sxm4-80gb" not in err
    assert main(["estimate", str(path), "--hw", "h100", "--set", "engine=vllm-v1"]) == 0
    assert "note" not in capsys.readouterr().err
