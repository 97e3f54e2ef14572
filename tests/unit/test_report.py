"""`simhw report`: a valid multi-page PDF, written atomically; bad input leaves no file."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simhw.cli import main

ROOT = Path(__file__).resolve().parents[2]
DECODE = str(ROOT / "workloads/llama2-70b-decode.yaml")
TRAIN = str(ROOT / "workloads/gpt3-175b-megatron.yaml")


@pytest.fixture(autouse=True)
def _mpl_config(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / "mplconfig"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def pages(path: Path) -> int:
    try:
        import pypdfium2
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", path.read_bytes()))
    doc = pypdfium2.PdfDocument(str(path))
    try:
        return len(doc)
    finally:
        doc.close()


def test_report_is_a_multipage_pdf(tmp_path, capsys):
    out = tmp_path / "decode.pdf"
    assert main(["report", DECODE, "--hw", "a100", "--hw", "h100", "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    # summary, time breakdown, memory, ops + rooflines, workload and sources
    assert pages(out) == 5
    assert b"simhw report: llama2-70b-decode" in data  # metadata Title
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["decode.pdf"]  # no temporary file left behind


def test_report_training_with_overrides_and_a_node(tmp_path):
    out = tmp_path / "train.pdf"
    assert main(["report", TRAIN, "--hw", "dgx-a100", "--set", "memory.recompute=full", "-o", str(out)]) == 0
    assert pages(out) == 5


def test_many_hardware_adds_roofline_pages(tmp_path):
    from simhw.commands.estimate import estimate_many
    from simhw.report.pdf import page_count, report_pdf_bytes
    from simhw.spec.load import load_hw

    names = ["a100"] * 5
    results = estimate_many(DECODE, names, (), ops=True)
    data = report_pdf_bytes(results, [load_hw(n) for n in names])
    assert page_count(data) == 6  # the fifth roofline continues on its own page


@pytest.mark.parametrize("argv, fragment", [
    (["report", DECODE, "--hw", "no-such-gpu"], "no-such-gpu"),
    (["report", str(ROOT / "workloads/missing.yaml"), "--hw", "a100"], "missing.yaml"),
    (["report", DECODE, "--hw", "a100", "--set", "parallelism.tp=3"], "tp"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, fragment):
    out = tmp_path / "bad.pdf"
    assert main(argv + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simhw: error:") and fragment in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_report_survives_a_failed_run(tmp_path, capsys):
    out = tmp_path / "r.pdf"
    out.write_bytes(b"old")
    assert main(["report", DECODE, "--hw", "nope", "-o", str(out)]) == 2
    assert out.read_bytes() == b"old"


def test_output_must_be_pdf_in_an_existing_folder(tmp_path, capsys):
    assert main(["report", DECODE, "--hw", "a100", "-o", str(tmp_path / "r.png")]) == 2
    assert main(["report", DECODE, "--hw", "a100", "-o", str(tmp_path / "no/dir/r.pdf")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_rendering_error_leaves_no_file(tmp_path, monkeypatch, capsys):
    import simhw.report.pdf as pdf

    def boom(*a, **k):
        raise RuntimeError("render failed")

    monkeypatch.setattr(pdf, "info_figure", boom)
    out = tmp_path / "r.pdf"
    with pytest.raises(RuntimeError):
        main(["report", DECODE, "--hw", "a100", "-o", str(out)])
    assert list(tmp_path.iterdir()) == []


def test_summary_rows_and_roofline_points():
    from simhw.commands.estimate import estimate_many
    from simhw.report.plots import op_kind_share, roofline_points, summary_rows, usd

    a100, h100 = estimate_many(DECODE, ["a100", "h100"], (), ops=True)
    rows = {r[0]: r[1:] for r in summary_rows([a100, h100])}
    assert rows["fits in device memory"] == ["yes", "yes"]
    assert rows["speed-up vs " + a100.hardware][0] == "1.00x"
    assert "cloud cost / million tokens" in rows and "MFU" in rows and "average power (all devices)" in rows
    share = op_kind_share(a100)
    assert sum(share.values()) == pytest.approx(1.0)
    assert share["attention"] > 0 and share["gemm"] > 0
    pts = roofline_points(a100)
    assert pts and all(i > 0 and f > 0 for _, i, f, _ in pts)
    assert usd(9.096e-05) == "$0.00009096" and usd(2.8423) == "$2.842" and usd(1234.6) == "$1,235"


def test_cli_start_does_not_import_matplotlib():
    code = "import sys, simhw.cli as c; c.build_parser(); print('matplotlib' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
