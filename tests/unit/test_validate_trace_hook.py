"""`simhw validate TRACE --hw NAME`: a CUDA trace's own kernel times are the measurements (issue 4)."""
import json

from simhw.cli import main


def test_validate_a_real_cuda_trace(validation_dir, capsys):
    trace = validation_dir / "traces" / "hta_sampled_training_rank0_trace.json.gz"
    assert main(["validate", str(trace), "--hw", "a100", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "simhw.validate/1"
    assert data["kinds"]["gemm"]["n"] > 100
    assert 0 <= data["kinds"]["gemm"]["median_ape"] <= data["kinds"]["gemm"]["p90_ape"]


def test_validate_bad_trace(tmp_path, capsys):
    bad = tmp_path / "t.json"
    bad.write_text('{"traceEvents": [')
    assert main(["validate", str(bad), "--hw", "a100"]) == 2
    assert "Traceback" not in capsys.readouterr().err
