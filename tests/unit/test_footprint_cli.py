"""`simhw footprint`: table and JSON output, and one test per bad-input path (one line, exit 2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from simhw.cli import main

ROOT = Path(__file__).resolve().parents[2]
GPT4 = str(ROOT / "workloads/gpt4-train.yaml")
SMALL = str(ROOT / "workloads/llama2-7b-train.yaml")


def test_table_fits_100_columns(capsys):
    assert main(["footprint", GPT4, "--hw", "a100", "--mfu", "0.2,0.5,0.6", "--lifespan", "1y,3y,5y"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "Falk et al. scenarios" in out and "10,6" in out          # 2.1e25 FLOP at 20%, 1 y: ~10,670
    assert "both: 93.3%" in out and "; reached" in out and "UNVERIFIED" in out   # 1 y -> 5 y with MFU x3


def test_default_grid_does_not_reach_93_percent(capsys):
    assert main(["footprint", GPT4, "--hw", "a100"]) == 0
    out = capsys.readouterr().out
    assert "both: 88.9%" in out and "not reached by this grid" in out


def test_json_schema_and_grid(capsys):
    assert main(["footprint", SMALL, "--hw", "h100", "--total-flops", "1e23", "--grid", "taiwan",
                 "--pue", "1.3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "simhw.footprint/1"
    assert data["grid"] == {"name": "taiwan", "g_per_kwh": 583.0, "source": "ACT22 location.json"}
    assert data["pue"] == 1.3 and data["budget"]["total_flops"] == 1e23
    assert len(data["scenarios"]) == 4
    s = data["scenarios"][0]
    assert {"mfu", "lifespan_s", "gpus", "gpus_exact", "energy_j", "operational_kgco2e", "embodied_kgco2e",
            "cloud_usd", "capex_usd", "material"} <= set(s)
    assert {"total_kg", "heavy_metals_kg", "elements_kg"} <= set(s["material"])
    assert data["run"]["energy_j"] > 0 and data["run"]["economics"]["cloud_usd"] > 0


def test_tokens_numeric_grid_and_output_file(tmp_path, capsys):
    out = tmp_path / "fp.json"
    assert main(["footprint", SMALL, "--hw", "a100", "--tokens", "2e12", "--grid", "100",
                 "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["budget"]["tokens"] == pytest.approx(2e12)
    assert data["grid"]["g_per_kwh"] == 100.0 and data["grid"]["source"] == "user"


BAD = {
    "mfu list": ["--mfu", "0.2,,0.6"],
    "mfu not a number": ["--mfu", "fast"],
    "mfu above 1": ["--mfu", "0.2,1.5"],
    "mfu zero": ["--mfu", "0"],
    "lifespan without unit": ["--lifespan", "3"],
    "lifespan not a duration": ["--lifespan", "1y,forever"],
    "unknown grid": ["--grid", "mars"],
    "negative grid": ["--grid", "-5"],
    "pue below 1": ["--pue", "0.8"],
    "bad total flops": ["--total-flops", "lots"],
    "bad tokens": ["--tokens", "-3"],
}


@pytest.mark.parametrize("extra", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_exit_2(extra, capsys):
    assert main(["footprint", SMALL, "--hw", "a100", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("simhw: error:") and len(err.splitlines()) == 1 and "Traceback" not in err


def test_budget_options_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["footprint", SMALL, "--hw", "a100", "--total-flops", "1e23", "--tokens", "1e12"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_unknown_hardware_and_workload(capsys, tmp_path):
    assert main(["footprint", SMALL, "--hw", "no-such-gpu"]) == 2
    assert main(["footprint", str(tmp_path / "missing.yaml"), "--hw", "a100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("simhw: error:") for line in err)
