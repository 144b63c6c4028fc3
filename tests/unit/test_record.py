"""The Redis record's layout and its one decoder (demandmon/state/record.py)."""

from __future__ import annotations

from collections import Counter

from agents.batch import Consumed, plan_batch
from agents.classify import load_mapping
from demandmon.state import record
from demandmon.state.record import Counts, EventCounts, counter_field
from schemas.vocabulary import LIVE_SOURCE, TOO_LATE


def test_entries_are_built_by_name_in_the_layout_order() -> None:
    value = (
        b'{"schema":"cad.incident-event/1","event_id":"e1","incident_id":"CAD/1",'
        b'"type":"created","occurred_at":"2023-11-01T10:00:00Z","bcu":"SE",'
        b'"opening_code":"MENTAL_HEALTH","caller":"public","grade":"I"}'
    )
    message = Consumed("t", 0, 7, b"CAD/1", value)
    plan = plan_batch([message], load_mapping(), 65536, 1698832800000, 300_000, set())
    (entry,) = plan.shards[(LIVE_SOURCE, 0)]
    named = dict(zip(record.EVENT_ENTRY, entry, strict=True))
    assert named["offset"] == 7 and named["is_event"] == record.EVENT
    assert named["type"] == "created" and named["occurred_ms"] == 1698832800000
    assert named["category_public"] == named["category_partner"] == "mental_health"
    assert named["grade"] == "I" and named["officers"] == 0
    assert record.entry_offset(entry) == 7
    rejected = record.reject_entry(8, TOO_LATE)
    assert dict(zip(record.REJECT_ENTRY, rejected, strict=True)) == {
        "offset": 8,
        "is_event": record.REJECTED,
        "reason": TOO_LATE,
    }


def test_every_code_has_one_name_and_a_meaning() -> None:
    codes = [c.code for c in (*record.BUCKET_COUNTERS, *record.GAUGES)]
    assert len(codes) == len(set(codes)) == len(record.CODES)
    assert all(c.meaning and c.labels[0] == "bcu" for c in record.CODES.values())
    assert set(record.SHARD_POSITION) <= set(record.META_FIELDS)


def test_counts_read_the_short_codes_by_name() -> None:
    raw = Counter({"i|AW|vulnerable": 3, "oh|AW|vulnerable": 7200_000, "k|SE": 1, "zz|AW": 9})
    counts = Counts(raw)
    assert counts.get("incidents", "AW", "vulnerable") == 3
    assert counts.get("officer_ms", "AW", "vulnerable") == 7200_000
    assert counts.get("in_custody", "SE") == 1
    assert counts.get("deployed", "AW", "vulnerable") == 0
    assert counter_field("incidents", "AW", "vulnerable") == "i|AW|vulnerable"
    assert counts.decoded() == {
        "incidents": {("AW", "vulnerable"): 3},
        "officer_ms": {("AW", "vulnerable"): 7200_000},
        "in_custody": {("SE",): 1},
    }


def test_event_counts_decode_the_meta_fields() -> None:
    meta = Counter({"applied": 10, "duplicate": 2, "orphaned": 1, "rej:too_late": 4})
    events = EventCounts.decode(meta)
    assert (events.applied, events.duplicate, events.orphaned) == (10, 2, 1)
    assert events.rejected == {TOO_LATE: 4}
