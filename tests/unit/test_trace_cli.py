"""``simhw trace summarize|validate`` and ``simhw estimate TRACE`` from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from simhw.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "traces"
REAL = ROOT.parent / "shared" / "validation" / "traces"


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_summarize_table(capsys):
    rc, out, _ = run(capsys, "trace", "summarize", str(FIXTURES / "cpu_gpt_block_train.json.gz"))
    assert rc == 0
    assert "CPU trace on CPU" in out and "shapes recorded" in out
    for word in ("gemm", "attention", "norm", "optimizer", "FLOPs", "CPU time", "bwd"):
        assert word in out


def test_summarize_json(capsys, tmp_path):
    out_file = tmp_path / "s.json"
    rc, out, _ = run(capsys, "trace", "summarize", str(FIXTURES / "cpu_convnet_train.json.gz"), "--format", "json",
                     "-o", str(out_file))
    assert rc == 0 and out == ""
    s = json.loads(out_file.read_text())
    assert s["schema"] == "simhw.trace-summary/1" and s["device"] == "CPU" and s["unmapped"] == []
    assert {k["kind"] for k in s["kinds"]} >= {"conv", "gemm", "norm", "loss", "softmax", "optimizer"}
    assert all(k["flops"] >= 0 and k["bytes"] > 0 for k in s["kinds"])


def test_summarize_lists_unmapped(capsys):
    rc, out, _ = run(capsys, "trace", "summarize", str(FIXTURES / "cpu_matmul_noshapes.json.gz"))
    assert rc == 0 and "not mapped" in out and "aten::matmul" in out and "record_shapes=True" in out


def test_estimate_trace_through_the_estimate_command(capsys):
    pytest.importorskip("simhw.commands.estimate")
    rc, out, _ = run(capsys, "estimate", str(FIXTURES / "cpu_llama_bf16_train.json.gz"), "--hw", "h100", "--hw", "a100",
                     "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["schema"] == "simhw.estimate/1" and len(doc["results"]) == 2
    h100, a100 = doc["results"]
    assert h100["mode"] == "train" and h100["step_time_s"] > 0 and h100["tokens_per_s"] > 0
    assert a100["step_time_s"] >= h100["step_time_s"]


def test_validate_real_cuda_trace(capsys):
    path = REAL / "hta_sampled_training_rank0_trace.json.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    rc, out, err = run(capsys, "trace", "validate", str(path), "--hw", "a100")
    assert rc == 0 and "median APE" in out and "gemm" in out and "not costed:" in out
    assert "deviceProperties" in err                             # warnings go to stderr
    rc, out, _ = run(capsys, "trace", "validate", str(path), "--hw", "a100", "--format", "json")
    kinds = {k["kind"]: k for k in json.loads(out)["kinds"]}
    assert kinds["all"]["ops"] > 500 and 0 <= kinds["gemm"]["median_ape"] < 10


def test_trace_without_action_prints_help(capsys):
    rc, _, err = run(capsys, "trace")
    assert rc == 2 and "summarize" in err
