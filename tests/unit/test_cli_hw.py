"""``simhw hw list`` and ``simhw hw show``."""
from __future__ import annotations

import json

import pytest

from simhw.cli import main
from simhw.spec.load import available_hw


def test_hw_list(capsys):
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "aliases", "description"]
    for name in ("h100-sxm5-80gb", "dgx-a100", "mi300x", "pm1733-3.84tb", "fusemax", "epyc-7742"):
        assert name in out
    assert len(lines) == 2 + len(available_hw())


def test_hw_list_json(capsys):
    assert main(["hw", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    h100 = next(r for r in rows if r["name"] == "h100-sxm5-80gb")
    assert h100["kind"] == "gpu" and "h100" in h100["aliases"]


def test_hw_show_h100(capsys):
    assert main(["hw", "show", "h100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("h100-sxm5-80gb (gpu)")
    for text in ("989.4 TFLOP/s", "3.35 TB/s", "85.0175 GB", "700 W", "450 GB/s per direction", "50 MiB",
                 "0.817 pJ/FLOP", "1.76x (sustained die temperature)", "185 W", "814 mm^2", "2.5 USD/h", "5 year"):
        assert text in out, text
    bf16 = next(line for line in out.splitlines() if line.startswith("compute.peak.bf16"))
    assert "H100 datasheet" in bf16                       # the per-value source
    units = next(line for line in out.splitlines() if line.startswith("compute.units"))
    assert "(spec source)" in units                      # falls back to the spec's source


def test_hw_show_json_has_si_values_and_sources(capsys):
    assert main(["hw", "show", "a100", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "a100-sxm4-80gb"
    values = {v["field"]: v for v in data["values"]}
    assert values["compute.peak.bf16"]["value"] == pytest.approx(312e12)
    assert values["compute.peak.bf16"]["text"] == "312 TFLOP/s"
    assert values["memory.hbm.capacity"]["text"] == "79.14 GiB"
    assert values["memory.hbm.capacity"]["value"] == pytest.approx(79.14 * 2**30)
    assert values["memory.hbm.capacity"]["source"].startswith("the memory the CUDA runtime reports")
    assert values["compute.units"]["source"] == data["source"]


def test_hw_show_units_of_other_kinds(capsys):
    assert main(["hw", "show", "fusemax"]) == 0
    out = capsys.readouterr().out
    assert "400 GiB/s" in out and "16 MiB" in out and "17.1645 pJ" in out
    assert main(["hw", "show", "pm1733"]) == 0
    out = capsys.readouterr().out
    assert "6.4 GB/s" in out and "1450000" in out
    assert main(["hw", "show", "dgx-h100"]) == 0
    out = capsys.readouterr().out
    assert "h100-sxm5-80gb x 8" in out and "2 TB" in out and "680.14 GB" in out


@pytest.mark.parametrize("name", [row[0] for row in available_hw()])
def test_hw_show_every_shipped_spec(name, capsys):
    assert main(["hw", "show", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(name)


def test_hw_show_unknown_name(capsys):
    assert main(["hw", "show", "h100x"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown hardware 'h100x'" in err and "did you mean 'h100'" in err
    assert "Traceback" not in err


def test_hw_without_action_prints_help(capsys):
    assert main(["hw"]) == 2
    assert "list" in capsys.readouterr().out
