"""Every command the README's "What it answers" block shows runs (exit 0), outputs redirected to a
temporary folder; the placeholder inputs (trace.json.gz, measurements.csv) stand for simhw's own
committed H100 files, and the lines whose inputs only a user has (nccl.csv, iterations.csv) are
left out."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from simhw.cli import main

ROOT = Path(__file__).resolve().parents[2]
OWN = "validate/data/h100-2026-11-26"
STAND_INS = {"trace.json.gz": f"{OWN}/train_step_trace.json.gz", "measurements.csv": f"{OWN}/measurements.csv"}
USER_ONLY = ("nccl.csv", "iterations.csv")
OUTPUT_FLAGS = ("-o", "--output", "--timeline")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## What it answers", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.startswith("simhw ")]


def test_the_block_is_found():
    assert len(readme_commands()) >= 15


@pytest.mark.parametrize("line", [c for c in readme_commands() if not any(u in c for u in USER_ONLY)])
def test_readme_command_runs(line, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    args = shlex.split(line)[1:]
    for i, a in enumerate(args):
        if i and args[i - 1] in OUTPUT_FLAGS:
            args[i] = str(tmp_path / Path(a).name)
        elif a in STAND_INS:
            args[i] = STAND_INS[a]
        elif a == "plan.yaml":   # written by the schedule line above it
            assert main(["schedule", "workloads/llama2-7b-1m.yaml", "--hw", "a800-memo",
                         "-o", str(tmp_path / "plan.yaml")]) == 0
            args[i] = str(tmp_path / "plan.yaml")
    assert main(args) == 0, capsys.readouterr().err


def test_readme_python_example_runs(monkeypatch):
    """The README's Python API block, executed as written."""
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = text.split("The Python API gives the same as frozen values:", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)    # noqa: S102 (the project's own README)
    assert scope["r"].step_time_s > 0 and scope["sim"].step_time_s > 0
