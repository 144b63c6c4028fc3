"""Dead letters: building one never fails, whatever the message held, and never carries
free text, unknown fields or anything nested: only the contract's own valid fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.batch import Consumed, Rejection, plan_batch
from agents.classify import load_mapping
from agents.deadletter import (
    MAX_HEADER_BYTES,
    deadletter_headers,
    deadletter_key,
    deadletter_value,
)
from schemas.contract import FIELD_RULES
from schemas.vocabulary import SOURCE_HEADER

MAPPING = load_mapping()
NOW_MS = 1698840000000  # 2023-11-01T12:00:00Z
FUTURE_MS = 300_000
CANARY = "CANARY-PII-7f3a"
C = CANARY.encode()


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "cad.incident-event/1",
        "event_id": "e1",
        "incident_id": "CAD/1",
        "type": "created",
        "occurred_at": "2023-11-01T10:00:00Z",
        "bcu": "SE",
        "opening_code": "MENTAL_HEALTH",
        "caller": "public",
        "summary": CANARY,
        "notes": {"text": CANARY},
    }
    doc.update(changes)
    return doc


def _raw(tail: bytes = b"", **changes: Any) -> bytes:
    text = json.dumps(_doc(**changes)).encode()
    return text[:-1] + b", " + tail + b"}" if tail else text


REPLAY = [(SOURCE_HEADER, b"nov-2023")]
# (kind, key, payload, headers, reason plan_batch gives it)
HOSTILE: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]], str]] = [
    ("60,000 [", b"CAD/1", b'["' + C + b'",' + b"[" * 60_000, [], "malformed_json"),
    ("13,000 {a:", b"CAD/1", b'{"' + C + b'":' + b'{"a":' * 13_000, [], "malformed_json"),
    (
        "unknown field 6 deep",
        b"CAD/1",
        _raw(x={"a": {"b": {"c": {"d": {"e": CANARY}}}}}),
        [],
        "malformed_json",
    ),
    ("5,000 digits", b"CAD/1", _raw(b'"x": ' + b"7" * 5000), [], "malformed_json"),
    ("1e400", b"CAD/1", _raw(b'"x": 1e400'), [], "malformed_json"),
    ("NaN", b"CAD/1", _raw(b'"x": NaN'), [], "malformed_json"),
    ("bad UTF-8", b"CAD/1", _raw(b'"x": "\xff\xfe"'), [], "malformed_json"),
    ("UTF-16", b"CAD/1", json.dumps(_doc()).encode("utf-16"), [], "malformed_json"),
    ("repeat top", b"CAD/1", _raw(b'"summary": "' + C + b'"'), [], "malformed_json"),
    (
        "repeat nested",
        b"CAD/1",
        _raw(b'"more": {"t": "' + C + b'", "t": "' + C + b'"}'),
        [],
        "malformed_json",
    ),
    ("lone surrogate", b"CAD/1", _raw(b'"x": "\\ud800' + C + b'"'), [], "malformed_json"),
    ("missing key", None, _raw(), [], "schema_violation"),
    ("empty key", b"", _raw(), REPLAY, "schema_violation"),
    ("other key", C, _raw(), [], "schema_violation"),
    (
        "far future replay",
        b"CAD/1",
        _raw(occurred_at="2031-01-01T00:00:00Z"),
        REPLAY,
        "too_far_future",
    ),
    ("non-ASCII source", b"CAD/1", b"{" + C, [(SOURCE_HEADER, C + b"\xc3\xa9")], "bad_source"),
    ("oversized", b"CAD/1", _raw(summary=CANARY * 5000), [], "oversized"),
    ("top-level array", b"CAD/1", b'["' + C + b'"]', [], "schema_violation"),
    ("JSON string", b"CAD/1", b'"' + C + b'"', [], "schema_violation"),
    ("empty message", b"CAD/1", b"", [], "malformed_json"),
    ("bad bcu", b"CAD/1", _raw(bcu="XX"), [], "schema_violation"),
    (
        "free text in a code",
        b"CAD/1",
        _raw(bcu="XX", opening_code=CANARY + "!"),
        [],
        "schema_violation",
    ),
]
IDS = [h[0] for h in HOSTILE]


def _rejection(key: bytes | None, raw: bytes, headers: list[tuple[str, bytes]]) -> Rejection:
    msg = Consumed("cad.incident-events.v1", 2, 99, key, raw, headers)
    plan = plan_batch([msg], MAPPING, 65536, NOW_MS, FUTURE_MS, {"nov-2023"})
    (rejection,) = plan.rejections
    return rejection


def _check(rejection: Rejection) -> bytes | None:
    headers = deadletter_headers(rejection)
    key = deadletter_key(rejection)
    value = deadletter_value(rejection)
    assert [name for name, _ in headers] == [
        "demandmon-reason",
        "demandmon-detail",
        "demandmon-source",
        "demandmon-topic",
        "demandmon-partition",
        "demandmon-offset",
    ]
    for _, header in headers:
        assert len(header) <= MAX_HEADER_BYTES
        assert header.isascii() and header.decode().isprintable()
        assert C not in header and b"7777" not in header
    assert C not in key
    if value is not None:
        assert C not in value and b"7777" not in value
        doc = json.loads(value)
        assert set(doc) <= set(FIELD_RULES)
        assert all(FIELD_RULES[name](v) for name, v in doc.items())
        assert value == json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return value


@pytest.mark.parametrize(("kind", "key", "raw", "headers", "reason"), HOSTILE, ids=IDS)
def test_hostile_messages_are_dead_lettered_with_their_reason_and_no_canary(
    kind: str, key: bytes | None, raw: bytes, headers: list[tuple[str, bytes]], reason: str
) -> None:
    rejection = _rejection(key, raw, headers)
    assert rejection.reason == reason
    assert CANARY not in rejection.detail
    value = _check(rejection)
    if reason in ("malformed_json", "oversized", "bad_source"):
        assert value is None  # nothing parses: nothing is copied
    if kind == "far future replay":
        assert dict(deadletter_headers(rejection))["demandmon-source"] == b"nov-2023"


@pytest.mark.parametrize("reason", ["malformed_json", "schema_violation", "too_late", "oversized"])
@pytest.mark.parametrize(("kind", "key", "raw", "headers", "expected"), HOSTILE, ids=IDS)
def test_any_payload_under_any_reason_builds_a_dead_letter(
    kind: str,
    key: bytes | None,
    raw: bytes,
    headers: list[tuple[str, bytes]],
    expected: str,
    reason: str,
) -> None:
    msg = Consumed("t", 0, 1, key, raw, headers)
    _check(Rejection(msg, "unknown", reason, "some detail"))


def test_an_accepted_event_with_personal_data_dead_letters_without_it() -> None:
    good = Consumed("t", 0, 1, b"CAD/1", _raw())
    plan = plan_batch([good], MAPPING, 65536, NOW_MS, FUTURE_MS, {"nov-2023"})
    assert plan.applied_candidates == 1 and not plan.rejections
    rejection = _rejection(b"CAD/1", _raw(bcu="XX"), [])
    assert rejection.reason == "schema_violation" and "bcu" in rejection.detail
    value = _check(rejection)
    assert value is not None
    assert json.loads(value) == {
        "caller": "public",
        "event_id": "e1",
        "incident_id": "CAD/1",
        "occurred_at": "2023-11-01T10:00:00Z",
        "opening_code": "MENTAL_HEALTH",
        "schema": "cad.incident-event/1",
        "type": "created",
    }


def test_nothing_qualifies_means_an_empty_value() -> None:
    for raw in (b"{}", b'{"summary": "' + C + b'"}', b'{"bcu": 5, "officers": 11}', None):
        msg = Consumed("t", 0, 1, b"CAD/1", raw)
        assert deadletter_value(Rejection(msg, "live", "schema_violation", "x")) is None
    officers = Consumed("t", 0, 1, b"CAD/1", b'{"officers": 2, "grade": "I"}')
    value = deadletter_value(Rejection(officers, "live", "schema_violation", "x"))
    assert value == b'{"grade":"I","officers":2}'


def test_headers_are_ascii_and_capped() -> None:
    msg = Consumed("t\u00e9\n", -1, 2**70, None, None)
    rejection = Rejection(msg, "s\u00fcrce", "schema_violation", "d\u00e9tail " * 100)
    headers = dict(deadletter_headers(rejection))
    assert headers["demandmon-detail"] == (b"d?tail " * 100)[:MAX_HEADER_BYTES]
    assert headers["demandmon-source"] == b"s?rce"
    assert headers["demandmon-topic"] == b"t??"
    assert headers["demandmon-offset"] == str(2**70).encode()
    assert deadletter_key(rejection) == f"t??/-1/{2**70}".encode()
    assert deadletter_value(rejection) is None
