"""Planning a batch: sources, validation, classification, dead-letter records."""

from __future__ import annotations

import json

from agents.batch import SOURCE_HEADER, Consumed, plan_batch, source_of
from agents.classify import load_mapping, parse_mapping
from agents.deadletter import deadletter_headers, deadletter_key, deadletter_value

MAPPING = load_mapping()


def _created(**extra: object) -> bytes:
    doc = {
        "schema": "cad.incident-event/1",
        "event_id": "e1",
        "incident_id": "CAD/1",
        "type": "created",
        "occurred_at": "2023-11-01T10:00:00Z",
        "bcu": "SE",
        "opening_code": "WELFARE_CHECK",
        "caller": "public",
        "summary": "Jane Doe 07700 900123",
        **extra,
    }
    return json.dumps(doc).encode()


def test_source_header() -> None:
    assert source_of([]) == "live"
    assert source_of([(SOURCE_HEADER, b"nov-2023")]) == "nov-2023"
    assert source_of([(SOURCE_HEADER, b"Bad Name")]) is None
    assert source_of([(SOURCE_HEADER, b"unknown")]) is None
    assert source_of([(SOURCE_HEADER, b"\xff")]) is None


def test_welfare_check_depends_on_caller() -> None:
    assert MAPPING.category("WELFARE_CHECK", "public") == "concern_for_safety"
    assert MAPPING.category("WELFARE_CHECK", "partner_health") == "welfare_check_partner"
    assert MAPPING.category("ASB", "public") == "not_rcrp"


def test_mapping_is_replaceable_and_validated() -> None:
    custom = parse_mapping({"ASB": "vulnerable"})
    assert custom.category("ASB", "public") == "vulnerable"
    for bad in ({"X": "nonsense"}, {"X": {"public": "vulnerable"}}, ["X"]):
        try:
            parse_mapping(bad)
        except ValueError as exc:
            assert "RCRP mapping" in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")


def test_plan_groups_by_source_and_partition_and_counts_rejections() -> None:
    messages = [
        Consumed("t", 0, 10, b"CAD/1", _created()),
        Consumed("t", 0, 11, b"CAD/1", _created(event_id="e2"), [(SOURCE_HEADER, b"r1")]),
        Consumed("t", 1, 5, b"CAD/2", b"{oops"),
        Consumed("t", 1, 6, b"CAD/3", _created(incident_id="CAD/3", bcu="XX")),
        Consumed("t", 1, 7, b"OTHER", _created(event_id="e3")),
        Consumed("t", 2, 1, None, _created(), [(SOURCE_HEADER, b"NOT VALID")]),
    ]
    plan = plan_batch(messages, MAPPING, 65536)
    assert plan.shards[("live", 0)][0][:7] == [10, 1, "e1", "CAD/1", "created", 1698832800000, "SE"]
    assert plan.shards[("live", 0)][0][7:9] == ["concern_for_safety", "welfare_check_partner"]
    assert [e[0] for e in plan.shards[("r1", 0)]] == [11]
    assert plan.shards[("live", 1)] == [
        [5, 0, "malformed_json"],
        [6, 0, "schema_violation"],
        [7, 0, "schema_violation"],
    ]
    assert plan.shards[("unknown", 2)] == [[1, 0, "bad_source"]]
    assert [r.reason for r in plan.rejections] == [
        "malformed_json",
        "schema_violation",
        "schema_violation",
        "bad_source",
    ]


def test_dead_letters_carry_origin_and_no_free_text() -> None:
    msg = Consumed("events", 3, 42, b"CAD/3", _created(bcu="XX"))
    (rejection,) = plan_batch([msg], MAPPING, 65536).rejections
    headers = dict(deadletter_headers(rejection))
    assert headers["demandmon-reason"] == b"schema_violation"
    assert headers["demandmon-topic"] == b"events"
    assert headers["demandmon-partition"] == b"3"
    assert headers["demandmon-offset"] == b"42"
    assert deadletter_key(rejection) == b"events/3/42"
    value = deadletter_value(rejection)
    assert value is not None and b"Jane" not in value and b'"bcu":"XX"' in value
    for v in headers.values():
        assert b"Jane" not in v and b"0770" not in v
    big = Consumed("events", 0, 1, None, b"x" * 70_000)
    (over,) = plan_batch([big], MAPPING, 65536).rejections
    assert over.reason == "oversized" and deadletter_value(over) is None
