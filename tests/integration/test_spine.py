"""An event travels Kafka -> Faust worker -> Redis -> exporter -> Prometheus, for real.

The expected figures are recounted here from the produced events by hand, not by the
code under test.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.conftest import Pipeline
from tests.helpers import event_messages, produce, prom_scalar, scrape, wait_for

pytestmark = pytest.mark.integration


def _event(i: int, incident: str, kind: str, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema": "cad.incident-event/1",
        "event_id": f"ev-{i}",
        "incident_id": incident,
        "type": kind,
        "occurred_at": at,
        **fields,
    }


EVENTS = [
    _event(
        1,
        "CAD/1",
        "created",
        "2023-11-01T10:00:00Z",
        bcu="SE",
        opening_code="MENTAL_HEALTH",
        caller="public",
        grade="I",
        summary="Caller says her neighbour John Smith is unwell",
    ),
    _event(2, "CAD/1", "resource_assigned", "2023-11-01T10:02:00Z", resource_id="SE1", officers=2),
    _event(
        3,
        "CAD/2",
        "created",
        "2023-11-01T10:05:00Z",
        bcu="AW",
        opening_code="WELFARE_CHECK",
        caller="partner_health",
    ),
    _event(
        4,
        "CAD/3",
        "created",
        "2023-11-01T11:00:00Z",
        bcu="AW",
        opening_code="THEFT",
        caller="public",
        grade="S",
    ),
    _event(5, "CAD/3", "classified", "2023-11-01T11:10:00Z", opening_code="COLLAPSE"),
    _event(6, "CAD/2", "closed", "2023-11-01T12:00:00Z"),
]


def _recount(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Incidents per (bcu, category), the plain way: latest opening code wins."""
    mapping = {
        "MENTAL_HEALTH": "mental_health",
        "COLLAPSE": "collapse_illness_injury_trapped",
        "THEFT": "not_rcrp",
    }
    created = {e["incident_id"]: e for e in events if e["type"] == "created"}
    counts: Counter[tuple[str, str]] = Counter()
    for incident, c in created.items():
        codes = sorted(
            (e["occurred_at"], e["opening_code"])
            for e in events
            if e["incident_id"] == incident and "opening_code" in e
        )
        code = codes[-1][1]
        if code == "WELFARE_CHECK":
            cat = "concern_for_safety" if c["caller"] == "public" else "welfare_check_partner"
        else:
            cat = mapping[code]
        counts[(c["bcu"], cat)] += 1
    return counts


def test_event_reaches_prometheus_exactly_once(pipeline: Pipeline) -> None:
    pipeline.run("topics")
    worker = pipeline.start_worker()
    pipeline.start_exporter()
    duplicated = [*EVENTS, EVENTS[1]]  # the same event_id delivered twice
    malformed: list[tuple[bytes | None, bytes]] = [
        (b"CAD/9", b'{"schema": "cad.incident-event/1", "event_id": '),
        (b"CAD/9", json.dumps({**EVENTS[0], "bcu": "XX", "event_id": "bad-bcu"}).encode()),
    ]
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(duplicated) + malformed)

    expected = _recount(EVENTS)
    series = {(bcu, cat): n for (bcu, cat), n in expected.items()}

    def applied() -> float:
        key = ("demand_events_applied_total", (("source", "live"),))
        return scrape(pipeline.metrics_url).get(key, -1)

    wait_for(applied, lambda n: n == len(EVENTS), 90, f"{len(EVENTS)} applied events")
    samples = scrape(pipeline.metrics_url)
    for (bcu, cat), n in series.items():
        labels = (("bcu", bcu), ("category", cat), ("source", "live"), ("window", "all"))
        assert samples[("demand_rcrp_incidents", labels)] == n
    assert samples[("demand_events_duplicate_total", (("source", "live"),))] == 1
    rejected = {
        reason: samples[("demand_events_rejected_total", (("reason", reason), ("source", "live")))]
        for reason in ("malformed_json", "schema_violation")
    }
    assert rejected == {"malformed_json": 1, "schema_violation": 1}

    # The real Prometheus scraped the real exporter and holds the same figures.
    prom = pipeline.stack.prometheus
    total = 'sum(demand_rcrp_incidents{source="live",window="all"})'
    wait_for(
        lambda: prom_scalar(prom, total),
        lambda v: v == sum(expected.values()),
        60,
        "Prometheus to hold the incident total",
    )
    deployed = 'sum(demand_rcrp_deployed_incidents{source="live",window="all",bcu="SE"})'
    assert prom_scalar(prom, deployed) == 1
    dup = 'demand_events_duplicate_total{source="live"}'
    assert prom_scalar(prom, dup) == 1
    assert worker.poll() is None, pipeline.logs()

    # The malformed message is on the dead-letter topic with its reason and origin, and
    # no free text travels with any dead letter.
    consumer = KafkaConsumer(
        pipeline.deadletter,
        bootstrap_servers=pipeline.stack.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
    )
    letters = [m for _, m in zip(range(2), consumer, strict=False)]
    consumer.close()
    assert len(letters) == 2
    by_reason = {dict(m.headers)["demandmon-reason"]: m for m in letters}
    assert set(by_reason) == {b"malformed_json", b"schema_violation"}
    bad = dict(by_reason[b"malformed_json"].headers)
    assert bad["demandmon-topic"] == pipeline.topic.encode()
    assert bad["demandmon-source"] == b"live"
    assert int(bad["demandmon-offset"]) >= 0 and int(bad["demandmon-partition"]) >= 0
    for letter in letters:
        assert b"John Smith" not in (letter.value or b"")
        assert all(b"John" not in v for _, v in letter.headers)
    assert b"bcu" in dict(by_reason[b"schema_violation"].headers)["demandmon-detail"]
