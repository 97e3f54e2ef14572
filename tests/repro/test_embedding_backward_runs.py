"""Error bands of the embedding-backward model (cost/embedding.py) on simhw's own H100 and H200 runs
(validate/data/*/embedding.csv): the H100's fitted its one chain length (validate/fit_embedding.py),
the H200's is the check. Pricing by bytes alone was 34-82% fast on the same rows."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simhw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "validate"))

import fit_embedding  # noqa: E402


@pytest.mark.parametrize("gpu, med, p90", [("h100", 0.10, 0.15), ("h200", 0.10, 0.20)])
def test_embedding_backward_stays_inside_its_band(gpu, med, p90):
    d = pd.read_csv(fit_embedding.RUNS[gpu]).query("direction == 'backward'")
    err = np.abs(fit_embedding.errors(d, simhw.load_hw(gpu)))
    assert len(err) == 6 and np.median(err) <= med and np.quantile(err, 0.9) <= p90, err
