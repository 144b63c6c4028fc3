"""A prometheus_client collector that reads Redis at every scrape.

Every scrape asks the reader for every exported source's figures at that moment; the
exporter's reader (demandmon/exporter/cache.py) re-reads only shards written since, and
hands back the very objects of the last scrape for what did not change. Sample lines are
rendered again only for figures that are not those objects (``figures.windows`` and the
rest separately, so a live source whose windows stand still re-renders its few gauges
alone); a source read again has its lines rendered as soon as the reader has its figures,
while Redis still reads the next sources. Expected demand (demandmon/baseline) is worked
out after the figures, at their window ends (its current hours from the reader's own
read), and its lines are rendered again only when its figures are not the last scrape's.
``collect`` serves the registry's own path (tests, ``name[]``); ``exposition`` the fast one
(demandmon/exporter/exposition.py).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from demandmon.baseline.expected import Baseline
from demandmon.baseline.read import BaselineCache
from demandmon.exporter.cache import CachedStateReader
from demandmon.exporter.exposition import Exposition, family, render
from demandmon.exporter.families import HELP, baseline_samples, source_samples, state_samples
from demandmon.exporter.lines import Lines
from demandmon.state.reader import SourceFigures, StateReader

log = logging.getLogger(__name__)


@dataclass
class Scrape:
    figures: list[SourceFigures] = field(default_factory=list)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    up: bool = False
    duration_s: float = 0.0

    def own(self) -> list[Metric]:
        """The exporter's own gauges."""
        return [
            GaugeMetricFamily(
                "demand_exporter_redis_up",
                "1 when the last scrape read Redis",
                value=1.0 if self.up else 0.0,
            ),
            GaugeMetricFamily(
                "demand_exporter_scrape_duration_seconds",
                "Time the exporter took to read Redis",
                value=self.duration_s,
            ),
        ]


@dataclass
class _Rendered:
    figures: SourceFigures
    windows: dict[str, str]
    state: dict[str, str]
    baseline: Baseline | None
    expected: dict[str, str]


class DemandCollector(Collector):
    def __init__(
        self,
        reader: StateReader,
        clock: Callable[[], float] = time.time,
        expected: BaselineCache | None = None,
    ) -> None:
        """``expected``: expected demand's reader (the exporter's always has one; without
        it, as over a fake reader with no Redis, its families are left out)."""
        self.reader = reader
        self.clock = clock
        self.expected = expected
        self._lock = threading.Lock()  # one scrape at a time: the reader keeps figures
        self._rendered: dict[str, _Rendered] = {}
        self._exposition = Exposition()
        self._layouts = Lines()
        self._early: dict[str, tuple[SourceFigures, dict[str, str], dict[str, str]]] = {}

    def _scrape(self, early: bool = False) -> Scrape:
        """``early``: render each source's figure lines as the exporter's reader has them,
        while Redis still reads the next sources (``_early``)."""
        started = time.perf_counter()
        self._early.clear()
        try:
            now = self.clock()
            # Live and registered sources only: a deleted one's series vanish at once.
            sources = self.reader.exported_sources()
            if early and isinstance(self.reader, CachedStateReader):
                figures = self.reader.read_sources(sources, now, ready=self._render_early)
            else:
                figures = self.reader.read_sources(sources, now)
            baselines = self.expected.baselines(figures) if self.expected is not None else {}
        except Exception as exc:
            log.warning("reading Redis failed: %s", type(exc).__name__)
            return Scrape(duration_s=time.perf_counter() - started)
        return Scrape(figures, baselines, True, time.perf_counter() - started)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            scrape = self._scrape()
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        try:
            for fig in scrape.figures:
                base = scrape.baselines.get(fig.source)
                expected = baseline_samples(fig.source, base) if base is not None else ()
                for sample in itertools.chain(source_samples(fig), expected):
                    metric = families.get(sample.name)
                    if metric is None:
                        metric = families[sample.name] = family(
                            sample.name, [k for k, _ in sample.labels]
                        )
                    metric.add_metric([v for _, v in sample.labels], sample.value)
        except Exception as exc:
            log.warning("building samples failed: %s", type(exc).__name__)
            families.clear()
            scrape.up = False
        yield from (families[name] for name in HELP if name in families)
        yield from scrape.own()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The whole /metrics body in the format ``accept`` asks for, and its type."""
        headers, content_type = self._exposition.negotiate(accept)
        with self._lock:
            scrape = self._scrape(early=True)
            try:
                lines = [
                    self._lines(fig, scrape.baselines.get(fig.source)) for fig in scrape.figures
                ]
            except Exception as exc:
                log.warning("building samples failed: %s", type(exc).__name__)
                self._rendered.clear()
                lines, scrape.up = [], False
            if scrape.up:
                gone = set(self._rendered) - {fig.source for fig in scrape.figures}
                for source in gone:
                    del self._rendered[source]
                self._layouts.forget(gone)
        sources = [part for r in lines for part in (r.windows, r.state, r.expected)]
        return self._exposition.body(headers, sources, scrape.own()), content_type

    def _lines(self, fig: SourceFigures, base: Baseline | None) -> _Rendered:
        done = self._rendered.get(fig.source)
        if done is not None and done.figures is fig and done.baseline is base:
            return done
        if done is not None and done.baseline is base:
            expected = done.expected
        else:
            expected = self._layouts.expected(fig.source, base) if base is not None else {}
        early = self._early.pop(fig.source, None)
        if done is not None and done.figures is fig:
            windows, state = done.windows, done.state
        elif early is not None and early[0] is fig:
            windows, state = early[1], early[2]
        else:
            windows, state = self._figure_lines(fig, done)
        done = self._rendered[fig.source] = _Rendered(fig, windows, state, base, expected)
        return done

    def _figure_lines(
        self, fig: SourceFigures, done: _Rendered | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The window lines (the last scrape's when its windows are these) and the rest."""
        if done is not None and done.figures.windows is fig.windows:
            windows = done.windows
        else:
            windows = self._layouts.windows(fig)
        return windows, render(state_samples(fig))

    def _render_early(self, fig: SourceFigures) -> None:
        done = self._rendered.get(fig.source)
        if done is None or done.figures is not fig:
            self._early[fig.source] = (fig, *self._figure_lines(fig, done))
