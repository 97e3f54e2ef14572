"""validate/gpu/: the measurement scripts compile and import without PyTorch; they measure on CUDA, and
their --smoke run checks the harness on the CPU."""
from __future__ import annotations

import importlib
import py_compile
import subprocess
import sys

import pytest


def test_scripts_compile_and_import_without_torch(root):
    folder = root / "validate" / "gpu"
    scripts = sorted(folder.glob("*.py"))
    assert {p.name for p in scripts} >= {"run_all.py", "common.py", "gemm.py", "attention.py", "elementwise.py",
                                         "copies.py", "train_step.py"}
    for path in scripts:
        py_compile.compile(str(path), doraise=True)
    sys.path.insert(0, str(folder))
    try:
        for path in scripts:
            importlib.import_module(path.stem)      # torch is imported inside functions only
    finally:
        sys.path.remove(str(folder))
        for path in scripts:                          # generic names (common, gemm): do not leak them
            sys.modules.pop(path.stem, None)
    proc = subprocess.run([sys.executable, str(folder / "run_all.py"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--out" in proc.stdout


def test_run_all_quick_on_a_cuda_gpu(root, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    proc = subprocess.run([sys.executable, str(root / "validate" / "gpu" / "run_all.py"), "--out", str(tmp_path),
                           "--quick"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    from simhw.validation import read_measurements

    rows, bad = read_measurements(tmp_path / "measurements.csv")
    assert rows and not bad
    assert (tmp_path / "env.json").exists() and (tmp_path / "train_step_trace.json").exists()


def test_smoke_run_on_the_cpu_writes_readable_rows_and_a_trace(root, tmp_path):
    """``--smoke --device cpu`` runs every part (copies aside) on tiny shapes without a GPU, so the
    harness is checked before GPU time is spent; its rows must parse as simhw measurements."""
    pytest.importorskip("torch")
    script = root / "validate" / "gpu" / "run_all.py"
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--smoke", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    from simhw.trace import load_trace
    from simhw.validation import read_measurements

    rows, bad = read_measurements(tmp_path / "measurements.csv")
    assert not bad and {r.kind for r in rows} == {"gemm", "attention", "elementwise", "norm", "softmax"}
    assert all(r.measured_s > 0 for r in rows)
    trace = load_trace(tmp_path / "train_step_trace.json")
    assert trace.events > 100 and trace.shaped_ops > 0
    # each row says what one call ran (on a GPU its kernels; on the host its top-level PyTorch ops)
    import csv
    with (tmp_path / "measurements.csv").open() as fh:
        ran = {(r["kind"], r["label"].split()[0]): r["kernels"] for r in csv.DictReader(fh)}
    assert ran[("gemm", "linear")] == "aten::linear"
    assert ran[("softmax", "softmax")] == "aten::softmax" and ran[("norm", "layernorm")] == "aten::layer_norm"
    assert ran[("attention", "sdpa")].startswith("aten::scaled_dot_product_attention")
    assert all(r.held_s and r.held_s > r.measured_s for r in rows)      # the loop's launches, back to back
    # floors.csv: each smallest GEMM and add timed per call (no profiled kernel durations on the host)
    with (tmp_path / "floors.csv").open() as fh:
        floors = list(csv.DictReader(fh))
    assert {f["test"] for f in floors} == {"gemm", "add"} and all(float(f["graph_s"]) > 0 for f in floors)
    assert all(f["profiler_s"] == "" for f in floors) and floors[0]["kernels"] == "aten::linear"
    # a CPU run is never taken for GPU measurements
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "x"), "--device", "cpu"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--smoke" in proc.stderr and "Traceback" not in proc.stderr


def test_device_session_script_is_valid_bash_and_runs_the_three_parts(root):
    script = root / "validate" / "gpu" / "device_session.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert text.count("run_all.py") == 3 and "--smoke" in text and "--soak 5 --quick" in text
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)      # no OUT given
    assert proc.returncode != 0 and "usage" in proc.stderr


def test_train_e2e_smoke_on_the_cpu_feeds_the_training_check(root, tmp_path):
    """validate/gpu/train_e2e.py --smoke --device cpu: one tiny model, its CSV readable by
    simhw.validation.training.own_training_rows; without --smoke the host is refused."""
    pytest.importorskip("torch")
    script = root / "validate" / "gpu" / "train_e2e.py"
    env = {**__import__("os").environ, "OUT": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(script), "--smoke", "--device", "cpu", "--trace", "1x64"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "train_e2e_1x64_trace.json").exists()
    from simhw.validation.training import own_training_rows

    rows = own_training_rows(tmp_path / "train_e2e-traced.csv", "h100")
    assert len(rows) == 1 and rows[0][0].measured_s > 0 and rows[0][0].predicted_s > 0
    proc = subprocess.run([sys.executable, str(script), "--device", "cpu"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "--smoke" in proc.stderr and "Traceback" not in proc.stderr


def test_train_e2e_compiled_smoke_is_costed_as_the_compiled_framework(root, tmp_path):
    """--compile --optimizer fused on the host: Inductor compiles the tiny blocks and loss, the CSV
    names the run (compiled, fused optimizer) and own_training_rows costs it as ``compiled``."""
    pytest.importorskip("torch")
    import csv

    script = root / "validate" / "gpu" / "train_e2e.py"
    env = {**__import__("os").environ, "OUT": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(script), "--smoke", "--device", "cpu", "--compile", "--optimizer", "fused"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "train_e2e-fusedadam-compiled.csv"
    row = next(csv.DictReader(path.open()))
    assert row["compiled"] == "true" and row["optimizer_impl"] == "fused"
    from simhw.validation.training import own_workload

    wl = own_workload(row)
    assert wl["framework"] == "compiled" and wl["optimizer_kernel"] == "fused"


def test_training_device_session_is_valid_bash_and_packs_every_part(root):
    """device_session_train.sh: each train_e2e.py part under its own time limit, the folder packed
    into OUT/train.tgz after every part (the device tool returns only a few files per run)."""
    script = root / "validate" / "gpu" / "device_session_train.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    parts = [line for line in text.splitlines() if line.startswith("part ")]
    assert len(parts) == 6 and any("--compile" in p for p in parts) and any("--optimizer fused" in p for p in parts)
    assert 'tar czf "$out/train.tgz"' in text
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)      # no OUT given
    assert proc.returncode != 0 and "usage" in proc.stderr


def test_scalar_kernel_rows_sweep_the_first_wave_and_read_as_latency_bound_measurements(root, tmp_path):
    """validate/gpu/scalar_kernels.py (CUDA only): its token sweep straddles the first wave of
    1024-thread blocks (two per SM) and its rows parse as simhw measurements of latency-bound
    kernels (load_bytes 2), which simhw prices by cost/latency.py."""
    folder = root / "validate" / "gpu"
    sys.path.insert(0, str(folder))
    try:
        common = importlib.import_module("common")
        scalar = importlib.import_module("scalar_kernels")
        assert scalar.token_counts(132) == (1, 16, 256, 264, 272, 1056, 4096)
        assert scalar.measure(device="cpu") == []
        rows = [scalar._row("norm", "scalar_rmsnorm", t, 8192, 1, 0.01, "test", 20) for t in (1, 264)]
        rows.append(scalar._row("elementwise", "scalar_silu_and_mul", 272, 11008, 2, 0.03, "test", 20))
        common.write_rows(tmp_path / "scalar_kernels.csv", rows, scalar.COLUMNS)
    finally:
        sys.path.remove(str(folder))
        for name in ("common", "scalar_kernels"):
            sys.modules.pop(name, None)
    from simhw.spec.load import load_hw
    from simhw.validation import evaluate, read_measurements

    parsed, bad = read_measurements(tmp_path / "scalar_kernels.csv")
    assert not bad and [r.kind for r in parsed] == ["norm", "norm", "elementwise"]
    assert all(r.op.shape["load_bytes"] == 2 for r in parsed)
    result = evaluate(parsed, load_hw("h100"), "scalar_kernels.csv", [])
    assert result.rows[1].predicted_s > result.rows[0].predicted_s > 0
