"""The fast sample lines (demandmon/exporter/lines.py) are byte for byte what ``render``
makes of the generators' samples: windows with every counter field set to awkward values
(large, in ms, beyond 10^6 where Go switches to exponents, absent), and expected demand
with fractions, negative scores and a -0.0."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from demandmon.baseline.expected import SERIES, Baseline, Expectation
from demandmon.exporter.exposition import GO, render
from demandmon.exporter.families import baseline_samples, windows_samples
from demandmon.exporter.lines import Lines
from demandmon.exporter.vectors import BUCKET_FIELDS
from demandmon.state.reader import SourceFigures
from demandmon.state.windows import WINDOWS

VALUES = [0, 1, 7, 999_999, 1_000_000, 12_345_678, 7_200_000, 10**15 + 1, 3_600_001, -4]


def _figures(seed: int, source: str = "nov-2023") -> SourceFigures:
    rng = random.Random(seed)
    windows = {
        name: Counter({f: rng.choice(VALUES) for f in BUCKET_FIELDS if rng.random() < 0.6})
        for name in (*WINDOWS, "all")
    }
    windows["24h"]["i|XX|unknown-category"] = 5  # a field no series reads
    return SourceFigures(source, 1.7e9, 1.7e9, None, windows=windows)


@pytest.mark.parametrize("seed", range(5))
def test_window_lines_are_the_samples_rendered(seed: int) -> None:
    lines = Lines()
    fig = _figures(seed)
    assert lines.windows(fig) == render(windows_samples(fig))
    again = _figures(seed + 100)  # the kept layout, other values
    assert lines.windows(again) == render(windows_samples(again))


def test_a_source_with_no_windows_has_no_window_lines() -> None:
    fig = SourceFigures("live", 1.7e9, 1.7e9, None)
    assert Lines().windows(fig) == render(windows_samples(fig)) == {}


def _baseline(rng: np.random.Generator, weeks: int) -> Baseline:
    def vector() -> np.ndarray:
        return np.round(rng.exponential(3.0, len(SERIES)), rng.integers(0, 4))

    def expectation() -> Expectation:
        return Expectation(vector(), np.maximum(vector(), 1.0))

    score = rng.normal(0.0, 3.0, len(SERIES))
    score[:3] = [0.0, 1e7, -2.5]
    return Baseline(weeks, expectation(), expectation(), vector(), score)


@pytest.mark.parametrize("weeks", range(5))
def test_expected_lines_are_the_samples_rendered(weeks: int) -> None:
    lines = Lines()
    base = _baseline(np.random.default_rng(weeks), weeks)
    assert lines.expected("r01", base) == render(baseline_samples("r01", base))
    negative_zero = Baseline(weeks, base.last_hour, base.next_day, base.recent, -base.score * 0)
    want = render(baseline_samples("r01", negative_zero))
    assert lines.expected("r01", negative_zero) == want
    assert "-0.0\n" in want["demand_expected_score"] and GO[0.0] == "0.0"


def test_layouts_of_sources_gone_are_forgotten() -> None:
    lines = Lines()
    lines.windows(_figures(1, "r01"))
    lines.windows(_figures(1, "r02"))
    lines.forget(["r01"])
    assert {source for source, _ in lines._windows} == {"r02"}
