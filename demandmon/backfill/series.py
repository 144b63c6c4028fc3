"""Which samples to write, pure: a series' value at each step of event time, kept only
where it changed, and written again at least every ``HEARTBEAT_MS`` while it stands still.

Prometheus reads an instant from the latest sample at most 5 minutes older (its lookback),
so a sample at least every 4 minutes makes any instant read exactly what a scrape at that
step would have shown, with a fraction of the lines a sample per step would take."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Final

from demandmon.exporter.families import Sample

HEARTBEAT_MS: Final = 4 * 60_000
LOOKBACK_MS: Final = 5 * 60_000  # Prometheus' default --query.lookback-delta

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # metric, labels sorted by name


def heartbeat_ms(step_ms: int) -> int:
    """The longest run of steps a series goes without a sample: a whole number of steps,
    at most 4 minutes (one step when a step is longer, which ``--step`` refuses)."""
    return step_ms * max(1, HEARTBEAT_MS // step_ms)


class SeriesLog:
    """Each series' changes, step by step (change points only: memory follows the events,
    not the length of the period); ``points`` adds the heartbeats back."""

    def __init__(self, step_ms: int) -> None:
        self.step_ms = step_ms
        self.every_ms = heartbeat_ms(step_ms)
        self.end_ms: int | None = None
        self._last: dict[SeriesKey, float] = {}
        self._times: dict[SeriesKey, array[int]] = {}
        self._values: dict[SeriesKey, array[float]] = {}

    def observe(self, at_ms: int, samples: Iterable[Sample]) -> None:
        """The figures at step ``at_ms`` (steps in increasing order; a series missing
        here keeps its last value)."""
        if self.end_ms is not None and at_ms <= self.end_ms:
            raise ValueError("steps must increase")
        self.end_ms = at_ms
        last = self._last
        for s in samples:
            key = (s.name, s.labels)
            if last.get(key) == s.value:
                continue
            if key not in last:
                self._times[key] = array("q")
                self._values[key] = array("d")
            last[key] = s.value
            self._times[key].append(at_ms)
            self._values[key].append(s.value)

    def value(self, key: SeriesKey) -> float | None:
        """The series' latest value (None: never seen)."""
        return self._last.get(key)

    def series(self) -> list[SeriesKey]:
        return sorted(self._times)

    def changes(self) -> int:
        return sum(len(t) for t in self._times.values())

    def points(self, key: SeriesKey) -> Iterator[tuple[int, float]]:
        """The samples to write: each change, a heartbeat every ``every_ms`` while the
        value stands, and one at the last step so the series ends on its final value."""
        times, values = self._times[key], self._values[key]
        end = self.end_ms
        assert end is not None
        for i, (at, value) in enumerate(zip(times, values, strict=True)):
            until = times[i + 1] if i + 1 < len(times) else end + 1
            t = at
            while t < until:
                yield t, value
                t += self.every_ms
            if i + 1 == len(times) and t - self.every_ms != end:
                yield end, value
