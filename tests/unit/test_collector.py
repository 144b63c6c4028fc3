"""The exporter's collector (demandmon/exporter/collector.py) on an injected registry,
over a fake reader returning fixed figures, asserted the way client_python's own tests
do: ``registry.get_sample_value``."""

from __future__ import annotations

from collections import Counter

import redis
from prometheus_client import CollectorRegistry

from demandmon.exporter.collector import DemandCollector
from demandmon.state.reader import SourceFigures, StateReader
from demandmon.state.record import CODES, META_APPLIED, META_DUPLICATE, META_REJECTED, CounterName
from demandmon.state.windows import WINDOWS
from schemas.vocabulary import BCU_CODES, MENTAL_HEALTH, REJECT_REASONS, TOO_LATE

NOW_S = 1_700_000_000.0


def field(name: CounterName, *labels: str) -> str:
    """A counter hash field as the apply script writes it, named through the legend."""
    return "|".join((CODES[name].code, *labels))


def figures(source: str, incidents: int) -> SourceFigures:
    window = Counter(
        {
            field("incidents", "SE", MENTAL_HEALTH): incidents,
            field("deployed", "SE", MENTAL_HEALTH): 3,
            field("officer_ms", "SE", MENTAL_HEALTH): 7_200_000,  # 2 officer hours
            field("graded", "SE", "I"): 2,
            field("s136_detentions", "NW"): 1,
            field("s136_detention_ms", "NW"): 5_400_000,  # 1.5 h detained
            field("s136_officer_ms", "NW"): 72_000_000,  # 20 officer hours
        }
    )
    return SourceFigures(
        source=source,
        watermark_s=NOW_S - 60,
        window_end_s=NOW_S,
        last_processed_s=NOW_S - 1,
        # What the real reader returns: every window, here empty but for 24h and all.
        windows={
            **{name: Counter[str]() for name in WINDOWS},
            "24h": window,
            "all": Counter(window),
        },
        now=Counter({field("open", "SE", "I"): 4, field("in_custody", "NW"): 1}),
        meta=Counter({META_APPLIED: 100, META_DUPLICATE: 5, f"{META_REJECTED}{TOO_LATE}": 2}),
        past_target=Counter({"SE|I": 1}),
        oldest_unattended_i_created_s={"SE": NOW_S - 600},
        oldest_attended_i_created_s={"SE": NOW_S - 7200},
        last_long_wait_handover_s={"NW": NOW_S - 300},
    )


class FakeReader(StateReader):
    """Fixed figures per source, no Redis; ``failure`` makes every read raise it."""

    def __init__(self, by_source: dict[str, SourceFigures]) -> None:
        self.by_source = by_source
        self.failure: Exception | None = None
        self.reads: list[tuple[str, float]] = []

    def exported_sources(self) -> list[str]:
        if self.failure is not None:
            raise self.failure
        return sorted(self.by_source)

    def read(
        self, source: str, now_s: float, windows: dict[str, int] | None = None, totals: bool = True
    ) -> SourceFigures:
        self.reads.append((source, now_s))
        return self.by_source[source]


def _registry(reader: FakeReader) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DemandCollector(reader, clock=lambda: NOW_S))
    return registry


def test_figures_become_samples_with_their_labels() -> None:
    reader = FakeReader({"live": figures("live", 7), "nov-2023": figures("nov-2023", 11)})
    registry = _registry(reader)
    get = registry.get_sample_value
    rcrp = {"bcu": "SE", "category": MENTAL_HEALTH, "window": "24h"}
    assert get("demand_rcrp_incidents", {"source": "live", **rcrp}) == 7
    assert get("demand_rcrp_incidents", {"source": "nov-2023", **rcrp}) == 11
    assert get("demand_rcrp_deployed_incidents", {"source": "live", **rcrp}) == 3
    assert get("demand_officer_time_seconds", {"source": "live", **rcrp}) == 7200
    assert get("demand_rcrp_incidents", {"source": "live", **rcrp, "window": "all"}) == 7
    assert get("demand_igrade_incidents", {"source": "live", "bcu": "SE", "window": "24h"}) == 2
    assert get("demand_s136_detentions", {"source": "live", "bcu": "NW", "window": "24h"}) == 1
    assert get("demand_open_incidents", {"source": "live", "bcu": "SE", "grade": "I"}) == 4
    assert (
        get("demand_open_incidents_past_target", {"source": "live", "bcu": "SE", "grade": "I"}) == 1
    )
    se, nw = {"source": "live", "bcu": "SE"}, {"source": "live", "bcu": "NW"}
    assert get("demand_oldest_unattended_igrade_age_seconds", se) == 600
    assert get("demand_oldest_attended_open_igrade_age_seconds", se) == 7200
    assert get("demand_oldest_unattended_igrade_age_seconds", nw) == 0
    assert get("demand_s136_detention_seconds", {**nw, "window": "24h"}) == 5400
    assert get("demand_s136_officer_time_seconds", {**nw, "window": "24h"}) == 72000
    last = "demand_s136_last_long_wait_handover_timestamp_seconds"
    assert get(last, nw) == NOW_S - 300
    assert get(last, se) == 0  # none kept
    assert get("demand_s136_in_custody", {"source": "live", "bcu": "NW"}) == 1
    assert get("demand_stream_watermark_timestamp_seconds", {"source": "live"}) == NOW_S - 60
    assert get("demand_stream_window_end_timestamp_seconds", {"source": "live"}) == NOW_S
    # Pipeline counters are counters: exposed with _total.
    assert get("demand_events_applied_total", {"source": "live"}) == 100
    assert get("demand_events_duplicate_total", {"source": "live"}) == 5
    assert get("demand_events_rejected_total", {"source": "live", "reason": TOO_LATE}) == 2
    assert get("demand_exporter_redis_up") == 1
    # Every scrape reads at the injected clock's time, once per source.
    reader.reads.clear()
    get("demand_exporter_redis_up")
    assert reader.reads == [("live", NOW_S), ("nov-2023", NOW_S)]


def test_every_known_label_value_is_there_from_the_start_at_zero() -> None:
    registry = _registry(FakeReader({"live": figures("live", 7)}))
    get = registry.get_sample_value
    for bcu in BCU_CODES:
        labels = {"source": "live", "bcu": bcu, "category": MENTAL_HEALTH, "window": "1h"}
        assert get("demand_rcrp_incidents", labels) is not None
        assert get("demand_s136_in_custody", {"source": "live", "bcu": bcu}) is not None
    for reason in REJECT_REASONS:
        expected = 2 if reason == TOO_LATE else 0
        assert get("demand_events_rejected_total", {"source": "live", "reason": reason}) == expected
    labels = {"source": "live", "bcu": "AW", "category": MENTAL_HEALTH, "window": "24h"}
    assert get("demand_rcrp_incidents", labels) == 0


def test_each_scrape_reads_redis_again() -> None:
    reader = FakeReader({"live": figures("live", 7)})
    registry = _registry(reader)
    labels = {"source": "live", "bcu": "SE", "category": MENTAL_HEALTH, "window": "24h"}
    assert registry.get_sample_value("demand_rcrp_incidents", labels) == 7
    reader.by_source["live"] = figures("live", 8)
    assert registry.get_sample_value("demand_rcrp_incidents", labels) == 8
    # A source no longer exported (deleted) has no series at all on the next scrape.
    reader.by_source = {}
    assert registry.get_sample_value("demand_rcrp_incidents", labels) is None


def test_redis_failing_is_redis_up_0_and_no_figures() -> None:
    reader = FakeReader({"live": figures("live", 7)})
    reader.failure = redis.ConnectionError("Error 111 connecting")
    registry = _registry(reader)
    assert registry.get_sample_value("demand_exporter_redis_up") == 0
    assert registry.get_sample_value("demand_events_applied_total", {"source": "live"}) is None
    assert registry.get_sample_value("demand_exporter_scrape_duration_seconds") is not None
