"""Bad trace input: one clear one-line TraceError (or a warning saying what is missing) per path."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from simhw.cli import main
from simhw.errors import TraceError
from simhw.spec.load import load_hw
from simhw.trace import estimate_trace, load_trace, summarize, validate_trace

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "traces"
GOOD = FIXTURES / "cpu_convnet_train.json.gz"


def text_of(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode()


def error_of(path) -> str:
    with pytest.raises(TraceError) as info:
        load_trace(path)
    msg = str(info.value)
    assert "\n" not in msg and str(Path(path).name) in msg
    return msg


def test_missing_file(tmp_path):
    assert "no such trace file" in error_of(tmp_path / "nope.json")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.json"
    p.write_text("")
    assert "empty" in error_of(p)


def test_truncated_json(tmp_path):
    text = text_of(GOOD)
    p = tmp_path / "cut.json"
    p.write_text(text[: len(text) // 2])
    assert "ends early" in error_of(p) and "truncated" in error_of(p)


def test_truncated_json_inside_gzip(tmp_path):
    text = text_of(GOOD)
    p = tmp_path / "cut.json.gz"
    p.write_bytes(gzip.compress(text[: len(text) - 40].encode()))
    assert "ends early" in error_of(p)


def test_truncated_gzip_stream(tmp_path):
    raw = GOOD.read_bytes()
    p = tmp_path / "cut.json.gz"
    p.write_bytes(raw[: len(raw) // 2])
    assert "gzip stream ends early" in error_of(p)


def test_gzip_garbage(tmp_path):
    p = tmp_path / "garbage.json.gz"
    # gzip magic, then compression method 7 (gzip knows only 8, deflate) and fixed garbage: random
    # bytes here made the test flaky, as one in 256 draws begins a valid deflate header
    p.write_bytes(b"\x1f\x8b\x07" + random.Random(0).randbytes(2000))
    assert "not a readable gzip/JSON file" in error_of(p)


def test_binary_garbage(tmp_path):
    p = tmp_path / "garbage.json"
    p.write_bytes(b"\xff\xfe\x00" + random.Random(1).randbytes(100))
    msg = error_of(p)
    assert "not UTF-8" in msg or "not JSON" in msg


def test_not_json(tmp_path):
    p = tmp_path / "notes.json"
    p.write_text("hello, this is not json\n")
    assert "not JSON" in error_of(p)


def test_malformed_in_the_middle(tmp_path):
    text = text_of(GOOD)
    i = text.index('"ph"', len(text) // 3)
    p = tmp_path / "bad.json"
    p.write_text(text[:i] + "@@@" + text[i:])
    msg = error_of(p)
    assert "malformed JSON at character" in msg and "ends early" not in msg


def test_json_that_is_not_a_trace(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"model": "llama", "layers": 32}))
    msg = error_of(p)
    assert "not a PyTorch profiler trace" in msg and "layers" in msg


def test_trace_without_events(tmp_path):
    p = tmp_path / "empty_trace.json"
    p.write_text(json.dumps({"schemaVersion": 1, "traceEvents": []}))
    assert "no events" in error_of(p)


def test_trace_with_only_metadata_events(tmp_path):
    p = tmp_path / "meta_only.json"
    p.write_text(json.dumps({"traceEvents": [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "x"}}]}))
    assert "no profiler op or kernel events" in error_of(p)


def test_shapes_not_recorded_warns_and_still_estimates():
    r = estimate_trace(FIXTURES / "cpu_matmul_noshapes.json.gz", load_hw("h100"))
    (warning,) = [w for w in r.warnings if "record_shapes=True" in w]
    assert "100%" in warning and "cannot be re-costed" in warning
    assert {u.name for u in r.unmapped} == {"aten::matmul", "aten::tanh"}
    assert all(u.reason == "shapes not recorded" for u in r.unmapped)
    assert sum(u.share for u in r.unmapped) == pytest.approx(1.0) and r.step_time_s == 0.0
    s = summarize(FIXTURES / "cpu_matmul_noshapes.json.gz")
    assert s["record_shapes"] is False and s["warnings"]


def test_validate_needs_a_cuda_trace():
    with pytest.raises(TraceError, match="no GPU kernels"):
        validate_trace(GOOD, load_hw("a100"))


@pytest.mark.parametrize("argv", [["trace", "summarize"], ["trace", "validate", "--hw", "a100"],
                                  ["estimate", "--hw", "h100"]])
def test_cli_bad_trace_exits_2_with_one_line(tmp_path, capsys, argv):
    if argv[0] == "estimate":
        pytest.importorskip("simhw.commands.estimate")
    p = tmp_path / "cut.json"
    p.write_text(text_of(GOOD)[:500])
    assert main(argv[:2] + [str(p)] + argv[2:] if argv[0] == "trace" else [argv[0], str(p)] + argv[1:]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("simhw: error:") and "ends early" in err[0]
