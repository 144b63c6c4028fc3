"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from demandmon.alerting.thresholds import THRESHOLDS_FILE, Thresholds, load_thresholds

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def th() -> Thresholds:
    """The thresholds file the repository ships (deploy/thresholds.yaml)."""
    return load_thresholds(ROOT / THRESHOLDS_FILE)
