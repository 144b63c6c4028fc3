"""Sample lines of a source's windows and expected demand without a ``Sample`` per line.

A source's series are the same at every scrape, only their values move, so each line's
text up to its value is worked out once per source (and window) from the very generators
the slow path uses (demandmon/exporter/families.py), and a scrape joins those prefixes
with the values' texts. The result is byte for byte ``render`` of the generators'
samples (tests/unit/test_lines.py):

* a window's layout comes from ``window_samples`` run over counts that answer 1 for any
  counter and note which was asked: each sample then gives its counter field (one is
  asked per sample, which is checked) and its scale (its value, 1 x scale);
* expected demand's lines are ``baseline_samples``' in its order: per metric, the
  vectors below, one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, mul
from typing import Final

import numpy as np
from prometheus_client.utils import floatToGoString

from demandmon.baseline.expected import SERIES, Baseline, Expectation, Vector
from demandmon.exporter.exposition import GO, line_prefix
from demandmon.exporter.families import Sample, baseline_samples, window_samples
from demandmon.state.reader import SourceFigures
from demandmon.state.record import CounterName, Counts, counter_field

MAX_LAYOUTS: Final = 4096  # (source, window) layouts kept; sources are allow-listed


@dataclass(frozen=True)
class _Block:
    """One metric's lines in one window: each line's prefix, counter field and scale."""

    name: str
    prefixes: tuple[str, ...]
    fields: tuple[str, ...]
    scales: tuple[float, ...]


class _Probe(Counts):
    """Counts answering 1 for every counter, noting the fields asked for, in order."""

    def __init__(self) -> None:
        super().__init__({})
        self.asked: list[str] = []

    def get(self, name: CounterName, *labels: str) -> int:
        super().get(name, *labels)  # the same check of the labels
        self.asked.append(counter_field(name, *labels))
        return 1


def _groups(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.name, []).append(s)
    return out


def _window_layout(source: str, window: str) -> tuple[_Block, ...]:
    probe = _Probe()
    samples: list[Sample] = []
    fields: dict[int, str] = {}
    for sample in window_samples(source, window, probe):
        if len(probe.asked) != len(samples) + 1:
            raise ValueError(f"{sample.name}: not one counter per sample")
        fields[id(sample)] = probe.asked[-1]
        samples.append(sample)
    return tuple(
        _Block(
            name,
            tuple(line_prefix(s.name, s.labels) for s in group),
            tuple(fields[id(s)] for s in group),
            tuple(s.value for s in group),
        )
        for name, group in _groups(samples).items()
    )


def _baseline_layout(source: str) -> dict[str, tuple[str, ...]]:
    zero = np.zeros(len(SERIES))
    nothing = Expectation(zero, np.ones(len(SERIES)))
    probe = Baseline(weeks=0, last_hour=nothing, next_day=nothing, recent=zero, score=zero)
    return {
        name: tuple(line_prefix(s.name, s.labels) for s in group)
        for name, group in _groups(baseline_samples(source, probe)).items()
    }


def baseline_vectors(base: Baseline) -> dict[str, list[Vector]]:
    """Per metric, its values in ``baseline_samples``' order: a vector per period."""
    periods = (base.last_hour, base.next_day)
    return {
        "demand_expected_incidents": [p.mean for p in periods],
        "demand_expected_incidents_lower": [p.lower for p in periods],
        "demand_expected_incidents_upper": [p.upper for p in periods],
        "demand_recent_incidents": [base.recent],
        "demand_expected_score": [base.score],
        "demand_expected_basis": [np.array([float(base.weeks)])],
    }


def _join(prefixes: Sequence[str], texts: Iterable[str]) -> str:
    return "\n".join(map(add, prefixes, texts)) + "\n"


class Lines:
    """The layouts, kept per source (and window) while the source is exported."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[_Block, ...]] = {}
        self._expected: dict[str, dict[str, tuple[str, ...]]] = {}

    def windows(self, fig: SourceFigures) -> dict[str, str]:
        """``render(windows_samples(fig))``."""
        if len(self._windows) >= MAX_LAYOUTS:
            self._windows.clear()
        parts: dict[str, list[str]] = {}
        for window, counts in fig.windows.items():
            layout = self._windows.get((fig.source, window))
            if layout is None:
                layout = self._windows[fig.source, window] = _window_layout(fig.source, window)
            for block in layout:
                # Counts.get: int of the field, 0 when absent; x scale as window_samples.
                counted = map(int, map(counts.get, block.fields, repeat(0)))
                texts = map(GO.__getitem__, map(mul, counted, block.scales))
                parts.setdefault(block.name, []).append(_join(block.prefixes, texts))
        return {name: "".join(chunks) for name, chunks in parts.items()}

    def expected(self, source: str, base: Baseline) -> dict[str, str]:
        """``render(baseline_samples(source, base))``."""
        layout = self._expected.get(source)
        if layout is None:
            if len(self._expected) >= MAX_LAYOUTS:
                self._expected.clear()
            layout = self._expected[source] = _baseline_layout(source)
        out = {}
        for name, vectors in baseline_vectors(base).items():
            values = np.concatenate(vectors)
            if len(values) != len(layout[name]):
                raise ValueError(f"{name}: {len(values)} values for {len(layout[name])} series")
            if np.any((values == 0) & np.signbit(values)):  # -0.0: GO would say 0.0
                texts: Iterable[str] = map(floatToGoString, values.tolist())
            else:
                texts = map(GO.__getitem__, values.tolist())
            out[name] = _join(layout[name], texts)
        return out

    def forget(self, gone: Iterable[str]) -> None:
        """Drop the layouts of sources no longer exported."""
        names = set(gone)
        self._windows = {k: v for k, v in self._windows.items() if k[0] not in names}
        for source in names:
            self._expected.pop(source, None)
