"""Planning a batch: sources, validation, classification, dead-letter records."""

from __future__ import annotations

import json

import pytest

from agents.batch import Consumed, Plan, plan_batch, source_of
from agents.classify import load_mapping, parse_mapping
from agents.deadletter import deadletter_headers, deadletter_key, deadletter_value
from schemas.vocabulary import SOURCE_HEADER

MAPPING = load_mapping()
# 2023-11-01T12:00:00Z: the wall clock the plans are made at; the future limit is 5 min.
NOW_MS = 1698840000000
FUTURE_MS = 300_000
CANARY = "CANARY-PII-7f3a"
# The replay sources registered when these plans are made.
REGISTERED = frozenset({"r1", "nov-2023"})


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
    plan = plan_batch(messages, MAPPING, 65536, NOW_MS, FUTURE_MS, {"r1"})
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
    (rejection,) = plan_batch([msg], MAPPING, 65536, NOW_MS, FUTURE_MS, REGISTERED).rejections
    headers = dict(deadletter_headers(rejection))
    assert headers["demandmon-reason"] == b"schema_violation"
    assert headers["demandmon-topic"] == b"events"
    assert headers["demandmon-partition"] == b"3"
    assert headers["demandmon-offset"] == b"42"
    assert deadletter_key(rejection) == b"events/3/42"
    value = deadletter_value(rejection)
    # Only the contract's own fields that pass their rule: the bad bcu is named by the
    # detail header, never copied.
    assert value is not None and b"Jane" not in value and b"bcu" not in value
    assert json.loads(value)["event_id"] == "e1"
    for v in headers.values():
        assert b"Jane" not in v and b"0770" not in v
    big = Consumed("events", 0, 1, None, b"x" * 70_000)
    (over,) = plan_batch([big], MAPPING, 65536, NOW_MS, FUTURE_MS, REGISTERED).rejections
    assert over.reason == "oversized" and deadletter_value(over) is None


def _plan(*messages: Consumed) -> Plan:
    return plan_batch(list(messages), MAPPING, 65536, NOW_MS, FUTURE_MS, REGISTERED)


def _only_rejection(msg: Consumed) -> tuple[str, str, str]:
    plan = _plan(msg)
    (rejection,) = plan.rejections
    assert plan.applied_candidates == 0
    # Recorded like every other rejection: dead-lettered, and counted through the script.
    assert plan.shards == {(rejection.source, msg.partition): [[msg.offset, 0, rejection.reason]]}
    assert CANARY not in rejection.detail and "CAD/1" not in rejection.detail
    return rejection.source, rejection.reason, rejection.detail


def test_a_message_without_a_key_is_rejected() -> None:
    for key in (None, b""):
        source, reason, detail = _only_rejection(Consumed("t", 0, 1, key, _created()))
        assert (source, reason) == ("live", "schema_violation")
        assert detail == "message has no key (the key must be the incident_id)"


def test_a_key_other_than_the_incident_id_is_rejected() -> None:
    msg = Consumed("t", 0, 1, CANARY.encode(), _created(), [(SOURCE_HEADER, b"r1")])
    assert _only_rejection(msg) == ("r1", "schema_violation", "message key is not the incident_id")


def test_too_far_future_applies_to_every_source() -> None:
    ok = _created(occurred_at="2023-11-01T12:05:00Z")  # exactly 5 min ahead: accepted
    late = _created(occurred_at="2023-11-01T12:05:00.001Z")
    for headers in ([], [(SOURCE_HEADER, b"nov-2023")]):
        plan = _plan(Consumed("t", 0, 1, b"CAD/1", ok, headers))
        assert plan.applied_candidates == 1 and not plan.rejections
        source, reason, detail = _only_rejection(Consumed("t", 0, 2, b"CAD/1", late, headers))
        assert source == ("nov-2023" if headers else "live")
        assert reason == "too_far_future"
        assert detail == "occurred_at is more than 300 s past the wall clock"
    # A replay far in the future (a year ahead) is refused too.
    year = _created(occurred_at="2024-11-01T12:00:00Z")
    hdr = [(SOURCE_HEADER, b"r1")]
    assert _only_rejection(Consumed("t", 0, 3, b"CAD/1", year, hdr))[1] == "too_far_future"


def test_a_bad_source_header_never_raises() -> None:
    for value in (b"\xff\xfe", "nov".encode("utf-16"), b"caf\xc3\xa9", b"", b"a" * 100, b"UP"):
        assert source_of([(SOURCE_HEADER, value)]) is None
    assert source_of([(SOURCE_HEADER, None)]) is None  # type: ignore[list-item]
    assert source_of([(SOURCE_HEADER, "nov-2023")]) is None  # type: ignore[list-item]
    assert source_of([("x",)]) is None  # type: ignore[list-item]
    assert source_of(None) is None  # type: ignore[arg-type]
    # A non-ASCII source header on a malformed payload: bad_source, under "unknown".
    msg = Consumed("t", 4, 9, b"CAD/1", b"[" * 60_000, [(SOURCE_HEADER, CANARY.encode() + b"\xe9")])
    assert _only_rejection(msg) == ("unknown", "bad_source", "source header")


def test_anything_unexpected_while_decoding_is_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(raw: bytes, max_bytes: int) -> object:
        raise RuntimeError(CANARY)

    monkeypatch.setattr("agents.batch.decode_event", explode)
    msg = Consumed("t", 0, 1, b"CAD/1", _created())
    assert _only_rejection(msg) == ("live", "malformed_json", "could not be decoded")


HOSTILE_BATCH: list[tuple[str, bytes, str]] = [
    ("60,000 [", b"[" * 60_000, "malformed_json"),
    ("13,000 {", b'{"a":' * 13_000, "malformed_json"),
    ("5,000 digits", _created()[:-1] + b', "x": ' + b"7" * 5000 + b"}", "malformed_json"),
    ("1e400", _created()[:-1] + b', "x": 1e400}', "malformed_json"),
    ("NaN", _created()[:-1] + b', "x": NaN}', "malformed_json"),
    ("bad UTF-8", _created(note="\xff").replace(b"\\u00ff", b"\xff"), "malformed_json"),
    ("UTF-16", _created().decode().encode("utf-16"), "malformed_json"),
    ("repeat", _created()[:-1] + b', "summary": "x"}', "malformed_json"),
    ("empty", b"", "malformed_json"),
    ("array", b"[1, 2]", "schema_violation"),
    ("string", b'"CAD/1"', "schema_violation"),
    ("oversized", _created(summary="x" * 70_000), "oversized"),
]


@pytest.mark.parametrize(
    ("kind", "raw", "reason"), HOSTILE_BATCH, ids=[h[0] for h in HOSTILE_BATCH]
)
def test_hostile_messages_are_rejections_not_failures(kind: str, raw: bytes, reason: str) -> None:
    msg = Consumed("t", 0, 7, b"CAD/1", raw, [(SOURCE_HEADER, b"r1")])
    assert _only_rejection(msg)[:2] == ("r1", reason)
    # The rest of the batch goes on.
    plan = _plan(msg, Consumed("t", 0, 8, b"CAD/1", _created()))
    assert plan.applied_candidates == 1 and len(plan.rejections) == 1
