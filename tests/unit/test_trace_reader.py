"""The profiler-trace reader: layouts (torch 2.x CPU fixtures, 2023 CUDA traces, 2021 layout),
gzip/plain, streaming across chunk boundaries, memory events, device properties."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import simhw.trace.reader as reader
from simhw.trace import is_trace_path, load_trace, trace_from_dict
from simhw.trace.ops import dtype_of, elsize
from simhw.spec.model import DType

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "traces"
REAL = ROOT.parent / "shared" / "validation" / "traces"


def real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def test_fixtures_are_small_gzipped_kineto_traces():
    files = sorted(FIXTURES.glob("*.json.gz"))
    assert len(files) >= 4
    for f in files:
        assert f.stat().st_size < 300_000
        with gzip.open(f, "rt") as fh:
            assert "traceEvents" in json.load(fh)


def test_cpu_fixture_layout():
    t = load_trace(FIXTURES / "cpu_gpt_block_train.json.gz")
    assert t.meta["schemaVersion"] == 1 and t.meta["record_shapes"] == 1
    assert not t.is_cuda and t.device_name() == "CPU"
    assert t.has_shapes and t.events == sum(t.counts.values())
    assert t.counts["cpu_op"] > 500 and t.counts["cpu_instant_event"] > 100
    assert len(t.memory) == t.counts["cpu_instant_event"]       # every instant event here is [memory]
    assert t.fwd_seq and all(isinstance(k, int) for k in t.fwd_seq)
    (key, recs), = t.threads.items()                            # CPU: forward and backward on one thread
    assert len(recs) == t.counts["cpu_op"] + t.counts["user_annotation"]


def test_plain_json_equals_gzip(tmp_path):
    src = FIXTURES / "cpu_convnet_train.json.gz"
    plain = tmp_path / "t.json"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    a, b = load_trace(src), load_trace(plain)
    assert a.threads == b.threads and a.memory == b.memory and a.meta == b.meta


@pytest.mark.parametrize("chunk", [1, 3, 7, 100, 4096])
def test_streaming_is_independent_of_chunk_boundaries(monkeypatch, chunk):
    path = FIXTURES / "cpu_convnet_train.json.gz"
    ref = load_trace(path)
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    t = load_trace(path)
    assert (t.events, t.meta, t.threads, t.memory, t.gpu) == (ref.events, ref.meta, ref.threads, ref.memory, ref.gpu)


def test_trace_from_dict_empties_the_event_list():
    doc = json.loads(gzip.decompress((FIXTURES / "cpu_convnet_train.json.gz").read_bytes()))
    n = len(doc["traceEvents"])
    t = trace_from_dict(doc)
    assert t.events == n and doc["traceEvents"] == []          # processed in place, not copied
    assert t.threads == load_trace(FIXTURES / "cpu_convnet_train.json.gz").threads


def test_bare_event_array(tmp_path):
    doc = json.loads(gzip.decompress((FIXTURES / "cpu_convnet_train.json.gz").read_bytes()))
    p = tmp_path / "array.json"
    p.write_text(json.dumps(doc["traceEvents"]))
    assert load_trace(p).events == len(doc["traceEvents"])


def test_real_cuda_trace_alexnet_2023():
    t = load_trace(real("hta_alexnet_a100_fwd_trace.json.gz"))
    assert t.events == 1408
    assert t.device_name() == "NVIDIA A100-PG509-200" and len(t.device_properties) == 8
    assert t.counts["kernel"] == 79 and t.counts["gpu_memcpy"] == 16 and t.counts["gpu_memset"] == 3
    assert len(t.gpu) == 79 + 16 + 3 and not t.has_shapes
    assert all(isinstance(r[0], int) for r in t.gpu)            # 2023 traces: integer µs


def test_real_cuda_trace_sampled_training():
    t = load_trace(real("hta_sampled_training_rank0_trace.json.gz"))
    assert t.events == 4855 and t.world_size == 128 and t.has_shapes
    assert t.device_properties == [] and t.device_name() == "GPU (no deviceProperties)"
    assert {key[1] for key in t.threads} == {4037, 23695}       # forward and autograd threads
    assert {r[5] for r in t.gpu if r[2] == reader.KERNEL} == {7, 23, 84, 203}   # kernels on four streams


def test_2021_layout(tmp_path):
    """Operator/Runtime/Kernel/Memcpy categories, lowercase 'external id', string tids, int µs, no
    Input type, [memory] without a category (torch_tb_profiler test data layout)."""
    events = [
        {"ph": "X", "cat": "Operator", "name": "ProfilerStep#1", "pid": 13721, "tid": "123", "ts": 50, "dur": 400,
         "args": {"Input Dims": [], "External id": 1}},
        {"ph": "X", "cat": "Operator", "name": "aten::mm", "pid": 13721, "tid": "123", "ts": 100, "dur": 100,
         "args": {"Input Dims": [[64, 32], [32, 16]], "External id": 4}},
        {"ph": "X", "cat": "Runtime", "name": "cudaLaunchKernel", "pid": 13721, "tid": "123", "ts": 120, "dur": 5,
         "args": {"correlation": 334, "external id": 4}},
        {"ph": "X", "cat": "Kernel", "name": "volta_sgemm_32x32_sliced1x4_nn", "pid": 0, "tid": "stream 7",
         "ts": 130, "dur": 15, "args": {"correlation": 334, "external id": 4, "device": 0, "stream": 7}},
        {"ph": "X", "cat": "Operator", "name": "aten::to", "pid": 13721, "tid": "123", "ts": 300, "dur": 40,
         "args": {"Input Dims": [[64, 16]], "External id": 5}},
        {"ph": "X", "cat": "Operator", "name": "aten::copy_", "pid": 13721, "tid": "123", "ts": 305, "dur": 30,
         "args": {"Input Dims": [[64, 16], [64, 16]], "External id": 6}},
        {"ph": "X", "cat": "Runtime", "name": "cudaMemcpyAsync", "pid": 13721, "tid": "123", "ts": 310, "dur": 20,
         "args": {"correlation": 335, "external id": 6}},
        {"ph": "X", "cat": "Memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "pid": 0, "tid": "stream 7",
         "ts": 320, "dur": 10, "args": {"correlation": 335, "external id": 6, "stream": 7, "bytes": 4096}},
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 13721, "tid": "123", "ts": 110,
         "args": {"Device Type": 1, "Device Id": 0, "Bytes": 4096}},
    ]
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    t = load_trace(p)
    assert t.is_cuda and len(t.gpu) == 2 and len(t.memory) == 1
    from simhw.trace.link import analyze
    a = analyze(t)
    mm, copy = a.ops
    assert mm.name == "aten::mm" and mm.est.flops == 2 * 64 * 16 * 32 and mm.gpu_s == pytest.approx(15e-6)
    assert copy.name == "aten::copy_" and copy.gpu_s == pytest.approx(10e-6)
    assert a.steps == 1 and not a.unmapped


@pytest.mark.parametrize("text,size,dtype", [
    ("float", 4, DType.FP32), ("double", 8, DType.FP64), ("c10::Half", 2, DType.FP16), ("Half", 2, DType.FP16),
    ("c10::BFloat16", 2, DType.BF16), ("BFloat16", 2, DType.BF16), ("long int", 8, None), ("long", 8, None),
    ("int", 4, None), ("bool", 1, None), ("unsigned char", 1, None), ("signed char", 1, None),
    ("c10::Float8_e4m3fn", 1, DType.FP8), ("c10::complex<float>", 8, None)])
def test_dtype_spellings(text, size, dtype):
    assert elsize(text) == size and dtype_of(text) == dtype


def test_is_trace_path():
    assert is_trace_path("a/b.json") and is_trace_path("x.pt.trace.json.gz") and is_trace_path("T.JSON.GZ")
    assert not is_trace_path("workloads/llama.yaml")
