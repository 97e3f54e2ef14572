"""validate/gpu/: the measurement scripts compile and import without PyTorch; they run only on CUDA."""
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
