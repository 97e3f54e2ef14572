"""simhw validate / calibrate: CSV reading, statistics, converters, CLI, cost-model invariants."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

import simhw
from simhw.cli import main
from simhw.errors import DataError
from simhw.validation import (convert_aiconfigurator, convert_llmcompass, convert_vidur, evaluate,
                              frame_to_measurements, read_measurements, render_table, validate)
from simhw.validation.schema import parse_lines
from simhw.validation.stats import RowResult, group_stats, percentile, summarise

MIXED = """kind,measured_s,m,n,k,dtype,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,op,bytes,ranks,elements,label
gemm,1.0e-4,1024,4096,4096,bf16,,,,,,,,,,,,g1
gemm,5.0e-5,1,4096,4096,fp16,,,,,,,,,,,,g2
attention,2.0e-4,,,,bf16,4,1024,1024,32,8,128,true,,,,,prefill
attention,3.0e-5,,,,bf16,8,1,4096,32,8,128,false,,,,,decode
collective,1.0e-4,,,,bf16,,,,,,,,all_reduce,16777216,8,,ar
collective,2.0e-5,,,,bf16,,,,,,,,all_gather,1048576,4,,ag
elementwise,1.0e-5,,,,bf16,,,,,,,,,,,1048576,add
norm,2.0e-5,,,,bf16,,,,,,,,,,,4194304,rms
gemm,1.0e-4,abc,4096,4096,bf16,,,,,,,,,,,,bad-m
attention,1.0e-4,,,,bf16,4,2048,1024,32,8,128,true,,,,,sq>skv
collective,1.0e-4,,,,bf16,,,,,,,,broadcast,1024,8,,bad-op
gemm,-1,16,16,16,bf16,,,,,,,,,,,,neg
"""


def _write(tmp_path, text, name="m.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mixed_csv_reads_good_rows_and_reports_bad_ones_with_lines(tmp_path):
    rows, bad = read_measurements(_write(tmp_path, MIXED))
    assert [r.kind for r in rows] == ["gemm", "gemm", "attention", "attention", "collective", "collective",
                                      "elementwise", "norm"]
    assert {b.line for b in bad} == {10, 11, 12, 13}
    reasons = {b.line: b.reason for b in bad}
    assert "'m'" in reasons[10] and "seq_q" in reasons[11] and "all_reduce" in reasons[12] and "measured_s" in reasons[13]
    prefill, decode = rows[2].op, rows[3].op
    assert prefill.shape["causal"] == 1.0 and decode.shape["causal"] == 0.0
    assert prefill.flops == pytest.approx(4 * 4 * 32 * 1024 * 1024 * 128 * (1024 * 1025 / 2) / (1024 * 1024))
    assert decode.flops == pytest.approx(4 * 8 * 32 * 1 * 4096 * 128)
    # bytes of Q, K, V, O
    assert decode.bytes == pytest.approx(2 * (8 * 32 * 128 * 2 + 2 * 8 * 4096 * 8 * 128))


def test_statistics_on_hand_made_rows():
    rows = [RowResult(i, "gemm", "s", "", 1.0, p) for i, p in enumerate((1.1, 0.8, 1.0, 1.3, 0.95))]
    st = group_stats(rows)
    errors = np.array([0.1, -0.2, 0.0, 0.3, -0.05])
    assert st.n == 5
    assert st.median_ape == pytest.approx(np.median(np.abs(errors)))
    assert st.p90_ape == pytest.approx(np.percentile(np.abs(errors), 90))
    assert st.bias == pytest.approx(np.median(errors))
    assert percentile([3, 1, 2], 50) == 2 and percentile([], 50) != percentile([], 50)   # nan
    res = summarise("hw", "f", rows + [RowResult(9, "norm", "t", "x", 2.0, 1.0)])
    assert set(res.kinds) == {"gemm", "norm"} and res.overall.n == 6 and res.kinds["norm"].bias == -0.5
    assert res.worst(count=1)[0].line == 9


def test_errors_by_measured_time_band():
    """Kinds whose rows span several kernel-time bands get a line per band (table and JSON)."""
    from simhw.validation.stats import duration_bands
    rows = [RowResult(1, "gemm", "t", "a", 2e-6, 3e-6), RowResult(2, "gemm", "t", "b", 3e-6, 3e-6),
            RowResult(3, "gemm", "t", "c", 1e-4, 0.9e-4), RowResult(4, "norm", "t", "d", 1e-4, 2e-4)]
    bands = duration_bands(rows)
    assert set(bands) == {("gemm", "< 5 us"), ("gemm", "50 us-500 us")}      # norm spans one band
    assert bands[("gemm", "< 5 us")].n == 2 and bands[("gemm", "< 5 us")].median_ape == pytest.approx(0.25)
    assert bands[("gemm", "50 us-500 us")].bias == pytest.approx(-0.1)
    res = summarise("hw", "f", rows)
    assert "50 us-500 us" in render_table(res)
    assert res.to_dict()["by_measured_time"]["gemm"]["< 5 us"]["n"] == 2


def test_validate_json_schema_and_table(tmp_path, capsys):
    path = _write(tmp_path, MIXED)
    rc = main(["validate", str(path), "--hw", "a100", "--format", "json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "simhw.validate/1" and doc["hardware"] == "a100-sxm4-80gb"
    assert set(doc["kinds"]) == {"gemm", "attention", "collective", "elementwise", "norm"}
    for st in list(doc["kinds"].values()) + [doc["overall"]]:
        assert set(st) >= {"n", "median_ape", "p90_ape", "bias"} and st["median_ape"] >= 0
    assert doc["overall"]["n"] == 8 and [u["line"] for u in doc["unreadable"]] == [10, 11, 12, 13]
    rc = main(["validate", str(path), "--hw", "a100"])
    out = capsys.readouterr().out
    assert rc == 0 and "median" in out and "line 10" in out and "unreadable" in out


def test_validate_csv_lists_every_priced_row(tmp_path, capsys):
    import pandas as pd
    path = _write(tmp_path, MIXED)
    out = tmp_path / "rows.csv"
    assert main(["validate", str(path), "--hw", "a100", "--format", "csv", "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["line", "kind", "source", "label", "measured_s", "predicted_s", "error"]
    assert len(df) == 8 and set(df.line) & {10, 11, 12, 13} == set()      # unreadable rows are not priced
    assert ((df.error - (df.predicted_s / df.measured_s - 1)).abs() < 1e-4).all()


def test_multi_node_collective_needs_a_node_spec(tmp_path):
    text = "kind,measured_s,op,bytes,ranks,ranks_per_node\ncollective,1e-3,all_reduce,1048576,16,8\n"
    res = validate(_write(tmp_path, text), "a100")
    assert not res.rows and res.unpriced and "node spec" in res.unpriced[0].reason
    res = validate(_write(tmp_path, text), "dgx-a100")
    assert res.rows and res.rows[0].predicted_s > 0


def test_custom_all_reduce_rows_are_priced_as_the_engines_kernel_until_it_hands_off_to_nccl(tmp_path):
    """op=custom_all_reduce: vLLM's own NVLink all-reduce (cost/comm.py custom_all_reduce_time_s);
    from 8 MiB on vLLM gives the message to NCCL, and the row is priced as NCCL's all_reduce."""
    text = ("kind,measured_s,op,bytes,ranks\n"
            "collective,5e-6,custom_all_reduce,4096,8\ncollective,5e-6,all_reduce,4096,8\n"
            "collective,1e-4,custom_all_reduce,8388608,8\ncollective,1e-4,all_reduce,8388608,8\n")
    rows = validate(_write(tmp_path, text), "dgx-a100").rows
    assert rows[0].predicted_s < 0.5 * rows[1].predicted_s
    assert rows[2].predicted_s == pytest.approx(rows[3].predicted_s)
    bad = validate(_write(tmp_path, "kind,measured_s,op,bytes,ranks\ncollective,1e-5,broadcast,4096,8\n"), "dgx-a100")
    assert not bad.rows and "custom_all_reduce" in bad.bad[0].reason


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("a,b\n1,2\n", "'kind' and 'measured_s'"),
    ("kind,measured_s\n", "no measurement rows"),
])
def test_bad_files_raise_data_error(tmp_path, text, fragment):
    with pytest.raises(DataError, match=fragment):
        read_measurements(_write(tmp_path, text))


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing.csv"), "--hw", "a100"]) == 2
    assert "not found" in capsys.readouterr().err
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01kind")
    assert main(["validate", str(binary), "--hw", "a100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "simhw: error:" in err


def _synthetic(tmp_path):
    """Tiny copies of each source's published layout (values made up)."""
    aic = tmp_path / "aic" / "a100"
    aic.mkdir(parents=True)
    (aic / "gemm_bf16_x.csv").write_text("m,n,k,latency\n1024,4096,4096,0.12\n1,4096,4096,0.03\n")
    (aic / "context_attention_bf16_x.csv").write_text("batch_size,isl,num_heads,num_key_value_heads,latency\n2,1024,32,8,0.2\n")
    (aic / "generation_attention_bf16kv_x.csv").write_text("batch_size,num_heads,num_key_value_heads,step,latency\n8,32,8,1023,0.03\n")
    (aic / "nccl_perf.csv").write_text("op_name,nccl_dtype,num_gpus,message_size,latency\nall_reduce,half,8,1048576,0.05\n"
                                       "alltoall,int8,4,4096,0.012\n")
    vid = tmp_path / "vid"
    (vid / "compute" / "m").mkdir(parents=True)
    (vid / "network").mkdir(parents=True)
    ops = ["attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj", "input_layernorm",
           "post_attention_layernorm", "mlp_act", "attn_rope", "add"]
    head = [f"time_stats.{o}.median" for o in ops] + ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size",
                                                      "use_gated_mlp", "num_tokens", "num_tensor_parallel_workers"]
    (vid / "compute" / "m" / "mlp.csv").write_text(",".join(head) + "\n" + ",".join(["0.05"] * 9) +
                                                   ",32,32,4096,11008,32000,True,128,2\n")
    (vid / "network" / "all_reduce.csv").write_text(",time_stats.all_reduce.median,rank,num_workers,size,collective,"
                                                    "devices_per_node,max_devices_per_node\n0,0.05,0,16,1048576,all_reduce,8,8\n")
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "matmul_A100.csv").write_text("64, 12288, 12288, 0.1900ms, 101.7124Tflops\n")
    (llm / "gelu_A100.csv").write_text("1024, 0.0212\n")
    (llm / "softmax_A100.csv").write_text("4096, 32, 9.99\n")
    return tmp_path / "aic", vid, llm


def test_converters_in_memory(tmp_path):
    aic, vid, llm = _synthetic(tmp_path)
    a = convert_aiconfigurator(aic)
    assert list(a.kind) == ["gemm", "gemm", "attention", "attention", "collective", "collective"]
    assert a.measured_s.iloc[0] == pytest.approx(0.12e-3)
    dec = a[a.seq_q == 1].iloc[0]
    assert dec.seq_kv == 1024 and dec.causal == "false"
    coll = a[a.kind == "collective"]
    assert list(coll.op) == ["all_reduce", "all_to_all"] and list(coll.bytes) == [2 * 1048576, 4096]
    v = convert_vidur(vid)
    gemms = v[v.kind == "gemm"]
    assert list(gemms.n) == [(32 + 2 * 32) * 128 // 2, 4096, 2 * 11008 // 2, 4096]
    assert list(gemms.k) == [4096, 4096 // 2, 4096, 11008 // 2]
    ar = v[v.kind == "collective"].iloc[0]
    assert ar.bytes == 1048576 and ar.ranks == 16 and ar.ranks_per_node == 8   # vidur's `size` is bytes
    lc = convert_llmcompass(llm)
    assert set(lc[lc.kind.isin(["gemm", "softmax"])].timing) == {"wall"}          # eager torch ops
    assert set(lc[lc.kind.isin(["norm", "elementwise"])].timing) <= {"compiled"}   # @torch.compile'd
    mm = lc[lc.kind == "gemm"].iloc[0]
    assert mm.measured_s == pytest.approx(0.19e-3)
    sm = lc[lc.kind == "softmax"].iloc[0]
    assert sm.measured_s == pytest.approx(4096 * 32 / 9.99e9)
    rows, bad = frame_to_measurements(a)
    assert not bad and len(rows) == 6
    res = evaluate(rows, simhw.load_hw("dgx-a100"), "aic")
    assert res.overall.n == 6
    assert "gemm" in render_table(res)
    with pytest.raises(DataError):
        convert_aiconfigurator(tmp_path / "empty_dir_does_not_exist")


def test_converters_pick_one_gpu(tmp_path, root):
    """A folder with several GPUs' files (a100/, h100_sxm/) needs gpu=; the GPU's own folder does not."""
    import shutil
    import subprocess
    import sys

    from simhw.validation import convert

    aic, _, _ = _synthetic(tmp_path)
    h100 = aic / "h100_sxm"
    shutil.copytree(aic / "a100", h100)
    (h100 / "gemm_bf16_x.csv").write_text("m,n,k,latency\n8192,8192,8192,1.3\n")
    with pytest.raises(DataError, match=r"several GPUs \(a100, h100\).*gpu="):
        convert("aiconfigurator", aic)
    with pytest.raises(DataError, match=r"no measurements of 'b200'.*a100, h100"):
        convert("aiconfigurator", aic, gpu="b200")
    a = convert("aiconfigurator", aic, gpu="a100")
    h = convert("aiconfigurator", aic, gpu="H100")
    assert list(a[a.kind == "gemm"].m) == [1024, 1] and list(h[h.kind == "gemm"].m) == [8192]
    assert len(convert("aiconfigurator", h100, gpu="h100")) == len(h)   # the GPU's folder itself
    assert len(convert("aiconfigurator", h100)) == len(h)
    out = tmp_path / "out.csv"
    cmd = [sys.executable, str(root / "validate" / "convert.py"), str(aic), str(out), "--source", "aiconfigurator"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and "several GPUs" in proc.stderr and not out.exists()
    proc = subprocess.run(cmd + ["--gpu", "h100"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(read_measurements(out)[0]) == len(h)


def test_convert_script(tmp_path, root):
    import subprocess
    import sys

    _, _, llm = _synthetic(tmp_path)
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, str(root / "validate" / "convert.py"), str(llm), str(out),
                           "--source", "llmcompass"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows, bad = read_measurements(out)
    assert len(rows) == 3 and not bad


def test_calibrate_recovers_a_perturbed_constant(tmp_path, capsys):
    from simhw.calibrate import calibrate, with_efficiency

    hw = simhw.load_hw("a100")
    truth = with_efficiency(hw, compute_fraction=0.7, memory_fraction=0.6)
    lines = ["kind,measured_s,m,n,k,dtype,label"]
    shapes = [(m, n, k) for m in (1, 16, 256, 1024, 4096) for n in (1024, 4096, 12288) for k in (1024, 4096, 8192)]
    from simhw.validation.predict import predict_s
    text = "kind,m,n,k,dtype,measured_s\n" + "\n".join(f"gemm,{m},{n},{k},bf16,1" for m, n, k in shapes) + "\n"
    rows, _ = parse_lines(text.splitlines(True))
    lines += [f"gemm,{predict_s(r, truth)},{m},{n},{k},bf16,s{i}" for i, (r, (m, n, k)) in enumerate(zip(rows, shapes))]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    rows, _ = read_measurements(path)
    result = calibrate(rows, hw, params=["compute_fraction", "memory_fraction"], max_fit_rows=60)
    assert result.params["compute_fraction"][1] == pytest.approx(0.7, rel=0.05)
    assert result.params["memory_fraction"][1] == pytest.approx(0.6, rel=0.05)
    assert result.after["gemm"].median_ape < result.before["gemm"].median_ape
    out = tmp_path / "cal.yaml"
    rc = main(["calibrate", str(path), "--hw", "a100", "-o", str(out), "--param", "compute_fraction",
               "--param", "memory_fraction", "--max-rows", "60"])
    assert rc == 0 and "held-back" in capsys.readouterr().out
    spec = simhw.load_hw(str(out))
    assert spec.efficiency.compute_fraction == pytest.approx(0.7, rel=0.05)
    assert spec.peak_flop_per_s == hw.peak_flop_per_s          # everything else comes from the base
    assert "extends: a100" in out.read_text()
    assert main(["calibrate", str(tmp_path / "nope.csv"), "--hw", "a100", "-o", str(out)]) == 2


def _scaled(hw, peak=1.0, bw=1.0, link=1.0):
    mem = (dataclasses.replace(hw.memory[0], bandwidth_bytes_per_s=hw.memory[0].bandwidth_bytes_per_s * bw),) + hw.memory[1:]
    links = tuple(dataclasses.replace(l, bandwidth_bytes_per_s=l.bandwidth_bytes_per_s * link) for l in hw.links)
    return dataclasses.replace(hw, memory=mem, links=links,
                               peak_flop_per_s={k: v * peak for k, v in hw.peak_flop_per_s.items()})


INVARIANT_ROWS = """kind,measured_s,m,n,k,dtype,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,op,bytes,ranks,elements
gemm,1,1,4096,4096,bf16,,,,,,,,,,,
gemm,1,96,7168,3072,bf16,,,,,,,,,,,
gemm,1,8192,8192,8192,bf16,,,,,,,,,,,
gemm,1,8192,32,65536,bf16,,,,,,,,,,,
attention,1,,,,bf16,4,4096,4096,32,8,128,true,,,,
attention,1,,,,bf16,1,1,131072,32,1,128,false,,,,
attention,1,,,,bf16,256,128,128,32,32,128,true,,,,
collective,1,,,,bf16,,,,,,,,all_reduce,1024,8,
collective,1,,,,bf16,,,,,,,,all_gather,268435456,4,
norm,1,,,,bf16,,,,,,,,,,,33554432
"""


@pytest.mark.parametrize("name", ["a100", "h100", "b200"])
def test_more_bandwidth_or_peak_never_slower_and_roofline_bound(name):
    from simhw.validation.predict import predict_s
    from simhw.workload.graph import OpKind

    hw = simhw.load_hw(name)
    rows, bad = parse_lines(INVARIANT_ROWS.splitlines(True))
    assert not bad
    for r in rows:
        base = predict_s(r, hw)
        for faster in (_scaled(hw, peak=1.5), _scaled(hw, bw=1.5), _scaled(hw, link=1.5), _scaled(hw, 2, 2, 2)):
            assert predict_s(r, faster) <= base * (1 + 1e-9), (name, r.op.name, r.op.shape)
        if r.op.kind not in (OpKind.COLLECTIVE, OpKind.SEND_RECV):
            floor = max(r.op.flops / hw.peak(r.op.dtype), r.op.bytes / hw.main_memory.bandwidth_bytes_per_s)
            assert base >= floor
            assert math.isfinite(base)


def test_datasets_yaml_is_valid_and_names_every_source():
    """validate/datasets.yaml parses and gives repo, commit and licence for each source."""
    import yaml

    from simhw.validation import SOURCES

    doc = yaml.safe_load((Path(__file__).parents[2] / "validate" / "datasets.yaml").read_text())
    sets = doc["datasets"]
    for name in list(SOURCES) + ["splitwise-sim", "argonne-llm-inference-bench", "llm-foundry"]:
        assert {"repo", "commit", "licence"} <= set(sets[name]), name
        assert len(str(sets[name]["commit"])) == 40


def test_report_for_another_gpu_writes_its_own_file(tmp_path, root):
    """validate/report.py --gpu h100 checks the H100 rows of a data tree and leaves the README alone;
    with no rows of that GPU it says so and writes nothing."""
    import subprocess
    import sys

    aic, _, _ = _synthetic(tmp_path / "data")          # .../data/aic/a100/...
    data = tmp_path / "data"
    (data / "aic").rename(data / "aiconfigurator")
    out = tmp_path / "out"
    out.mkdir()
    readme = (root / "README.md").read_text(encoding="utf-8")
    cmd = [sys.executable, str(root / "validate" / "report.py"), "--data", str(data), "--out", str(out)]
    proc = subprocess.run(cmd + ["--gpu", "h100"], capture_output=True, text=True)
    assert proc.returncode == 2 and "no H100 measurements" in proc.stderr
    assert not list(out.iterdir())
    (data / "aiconfigurator" / "a100").rename(data / "aiconfigurator" / "h100")
    proc = subprocess.run(cmd + ["--gpu", "h100"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.iterdir()] == ["REPORT-h100.md"]
    text = (out / "REPORT-h100.md").read_text(encoding="utf-8")
    assert "# simhw accuracy report (H100)" in text and "dgx-h100" in text and "| all H100 sets | gemm | 2 |" in text
    assert (root / "README.md").read_text(encoding="utf-8") == readme


def test_load_bytes_rows_are_latency_bound_by_littles_law():
    """A kernel with one scalar load in flight per thread streams at most SMs x threads_per_sm x
    load_bytes per memory latency (cost/latency.py): a row-wise norm pays two round trips per
    element, an elementwise row one per input; without load_bytes the row stays bandwidth-bound."""
    import dataclasses

    import simhw
    from simhw.cost.latency import load_latency_time_s
    from simhw.validation.predict import predict_s
    from simhw.validation.schema import parse_lines

    csv = ("kind,elements,reads,writes,dtype,load_bytes,measured_s\n"
           "norm,67108864,1,1,fp16,2,1\nelementwise,67108864,2,1,fp16,2,1\nnorm,67108864,1,1,fp16,,1\n"
           "norm,67108864,1,1,fp16,128,1\nnorm,67108864,1,1,fp16,-2,1\n")
    rows, bad = parse_lines(csv.splitlines(), "x")
    assert [b.line for b in bad] == [5, 6]
    assert "'load_bytes' = 128 must be at most 64" in bad[0].reason and "non-negative" in bad[1].reason
    hw = simhw.load_hw("a100")
    norm, act, plain = rows
    threads = hw.compute_units * hw.efficiency.threads_per_sm
    expect = 2 * 67108864 * 2 / (threads * 2) * hw.main_memory.latency_s
    assert load_latency_time_s(norm.op, hw, 2) == pytest.approx(expect, rel=1e-12)
    assert load_latency_time_s(act.op, hw, 2) == pytest.approx(expect, rel=1e-12)   # 2 reads, 1 pass
    assert predict_s(norm, hw) > 2 * predict_s(plain, hw)
    slower = dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, threads_per_sm=1024))
    assert load_latency_time_s(norm.op, slower, 2) == pytest.approx(2 * expect, rel=1e-12)
    assert load_latency_time_s(plain.op, hw, 0) == 0.0


def test_fresh_reads_come_from_l2_when_they_fit():
    """fresh_reads: inputs the kernel just before wrote are read from L2 when they fit in its
    resident share (cost/roofline.py fresh_l2_bytes), so a residual add of tensors that fit moves
    two tensors through HBM, not three; past the L2, or on a spec without one, nothing changes;
    more fresh reads than reads is a bad row; the latency-bound path is unchanged."""
    import dataclasses

    import simhw
    from simhw.cost.roofline import fresh_l2_bytes, memory_time_s
    from simhw.validation.predict import predict_s
    from simhw.validation.schema import parse_lines

    small, large = 4 * 1024 * 1024, 64 * 1024 * 1024           # 8 MB and 128 MB of fp16
    csv = ("kind,elements,reads,writes,dtype,fresh_reads,load_bytes,measured_s\n"
           f"elementwise,{small},2,1,fp16,1,,1\nelementwise,{small},2,1,fp16,,,1\n"
           f"elementwise,{large},2,1,fp16,1,,1\nelementwise,{large},2,1,fp16,,,1\n"
           f"norm,{small},1,1,fp16,1,2,1\nnorm,{small},1,1,fp16,,2,1\n"
           f"elementwise,{small},1,1,fp16,2,,1\nelementwise,{small},1,1,fp16,nan,,1\n")
    rows, bad = parse_lines(csv.splitlines(), "x")
    assert [b.line for b in bad] == [8, 9] and "'fresh_reads' = 2 must be at most 'reads' (1)" in bad[0].reason
    assert "'fresh_reads' = 'nan' must be a finite number" in bad[1].reason
    hw = simhw.load_hw("a100")
    fresh_small, cold_small, fresh_large, cold_large, fresh_norm, cold_norm = rows
    assert fresh_l2_bytes(fresh_small.op, hw) == small * 2
    frac = hw.efficiency.elementwise_memory_fraction
    assert predict_s(cold_small, hw) - predict_s(fresh_small, hw) == pytest.approx(
        memory_time_s(3 * small * 2, hw, frac) - memory_time_s(2 * small * 2, hw, frac), rel=1e-9)
    assert fresh_l2_bytes(fresh_large.op, hw) == 0.0
    assert predict_s(fresh_large, hw) == predict_s(cold_large, hw)
    # a latency-bound norm keeps its round trips (cost/latency.py); only the transfer they queue behind shrinks
    assert predict_s(cold_norm, hw) - predict_s(fresh_norm, hw) == pytest.approx(
        memory_time_s(2 * small * 2, hw, frac) - memory_time_s(small * 2, hw, frac), rel=1e-9)
    no_l2 = dataclasses.replace(hw, memory=tuple(m for m in hw.memory if m.name != "l2"))
    assert predict_s(fresh_small, no_l2) == predict_s(cold_small, no_l2)


def test_an_elementwise_row_may_name_its_function():
    """op on an elementwise row picks its FLOPs per element (workload/functions.py): a bf16 GELU of
    268M elements is bound by H200's SMs, an add by its HBM; an unknown name is a bad row."""
    import simhw
    from simhw.validation.predict import predict_s
    from simhw.validation.schema import parse_lines
    from simhw.workload.functions import ELEMENTWISE_FLOPS

    csv = ("kind,elements,reads,writes,dtype,op,measured_s\n"
           "elementwise,268435456,1,1,bf16,gelu,1\nelementwise,268435456,1,1,bf16,,1\n"
           "elementwise,268435456,1,1,bf16,frobnicate,1\n")
    rows, bad = parse_lines(csv.splitlines(), "x")
    assert rows[0].op.flops == ELEMENTWISE_FLOPS["gelu"] * 268435456 and rows[1].op.flops == 268435456
    assert [b.line for b in bad] == [4] and "'op' = 'frobnicate' must be one of" in bad[0].reason
    h200 = simhw.load_hw("h200")
    assert predict_s(rows[0], h200) > 1.2 * predict_s(rows[1], h200)


def test_aiconfigurator_gemm_table_with_its_dtype_column(tmp_path):
    """A GEMM table that keeps aiconfigurator's gemm_dtype column (its full H100 parquet) converts
    bf16 and per-tensor fp8 rows as such and leaves block-scaled fp8 out."""
    from simhw.validation import convert
    folder = tmp_path / "aiconfigurator" / "h100"
    folder.mkdir(parents=True)
    (folder / "gemm_perf.csv").write_text("m,n,k,latency,gemm_dtype\n16,4096,4096,0.010,bfloat16\n"
                                          "16,4096,4096,0.006,fp8\n16,4096,4096,0.007,fp8_block\n")
    df = convert("aiconfigurator", tmp_path / "aiconfigurator", gpu="h100")
    assert list(df["dtype"]) == ["bf16", "fp8"]
    fp8 = df[df["dtype"] == "fp8"].iloc[0]
    assert fp8["a_reuse_bytes"] == 4096 * 4096 * 1 + 16 * 4096 * 2    # one byte per fp8 weight element
