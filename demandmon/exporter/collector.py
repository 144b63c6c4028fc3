"""A prometheus_client collector that reads Redis at every scrape (stateless exporter)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from demandmon.exporter.families import HELP, source_samples
from demandmon.state.reader import StateReader

log = logging.getLogger(__name__)


class DemandCollector(Collector):
    def __init__(self, reader: StateReader, clock: Callable[[], float] = time.time) -> None:
        self.reader = reader
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        up = 1.0
        try:
            now = self.clock()
            # Live and registered sources only: a deleted one's series vanish at once.
            for source in self.reader.exported_sources():
                for sample in source_samples(self.reader.read(source, now)):
                    family = families.get(sample.name)
                    if family is None:
                        help_text, kind = HELP[sample.name]
                        names = [k for k, _ in sample.labels]
                        family = (
                            CounterMetricFamily(sample.name, help_text, labels=names)
                            if kind == "counter"
                            else GaugeMetricFamily(sample.name, help_text, labels=names)
                        )
                        families[sample.name] = family
                    family.add_metric([v for _, v in sample.labels], sample.value)
        except Exception as exc:
            log.warning("reading Redis failed: %s", type(exc).__name__)
            families.clear()
            up = 0.0
        yield from families.values()
        yield GaugeMetricFamily(
            "demand_exporter_redis_up", "1 when the last scrape read Redis", value=up
        )
        yield GaugeMetricFamily(
            "demand_exporter_scrape_duration_seconds",
            "Time the exporter took to read Redis",
            value=time.perf_counter() - started,
        )
