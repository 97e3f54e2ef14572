"""Shared fixtures: paths to the repository, its shipped examples and ../shared/validation."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
VALIDATION = SHARED / "validation"

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def validation_dir() -> Path:
    if not VALIDATION.is_dir():
        pytest.skip("../shared/validation is absent")
    return VALIDATION
