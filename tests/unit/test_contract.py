"""Event contract v1: every field rule, accepted and rejected, with the reason; and the
Python model agrees with the JSON Schema file on every case."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ContractError, decode_event, message, validate_event
from schemas.contract import FIELD_RULES, parse_timestamp_ms, valid_fields
from schemas.message import MAX_DEPTH, MAX_MESSAGE_BYTES

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "incident-event-v1.schema.json").read_text()
)

BASE: dict[str, Any] = {
    "schema": "cad.incident-event/1",
    "event_id": "ev-1",
    "incident_id": "CAD/2023/11/000001",
    "type": "created",
    "occurred_at": "2023-11-01T10:00:00Z",
    "bcu": "SE",
    "opening_code": "MENTAL_HEALTH",
    "caller": "public",
}

MINIMAL: dict[str, dict[str, Any]] = {
    "created": {"bcu": "AW", "opening_code": "X", "caller": "partner_health"},
    "graded": {"grade": "I"},
    "classified": {"opening_code": "COLLAPSE"},
    "resource_assigned": {"resource_id": "SE12A", "officers": 2},
    "resource_arrived": {"resource_id": "SE12A"},
    "resource_cleared": {"resource_id": "SE12A"},
    "s136_detained": {},
    "s136_arrived_pos": {"place": "HBPOS"},
    "s136_handover": {},
    "closed": {},
    "cancelled": {},
}


def _event(kind: str = "created", **changes: Any) -> dict[str, Any]:
    doc = {k: BASE[k] for k in ("schema", "event_id", "incident_id", "occurred_at")}
    doc["type"] = kind
    doc.update(MINIMAL[kind])
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


def _schema_accepts(doc: Any) -> bool:
    return not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))


ACCEPTED = [
    *[(kind, {}) for kind in MINIMAL],
    ("created", {"grade": "S"}),
    ("created", {"summary": "free text, ignored"}),
    ("created", {"unknown_extra": {"nested": True}}),
    ("created", {"occurred_at": "2023-11-01T10:00:00.123+01:00"}),
    ("created", {"occurred_at": "2023-10-29T01:30:00-00:00"}),
    ("created", {"occurred_at": "2023-11-01t10:00:00.123456789z"}),
    ("created", {"event_id": "a" * 64}),
    ("created", {"event_id": "A.b_c:d-9"}),
    ("created", {"incident_id": "CAD/2023:11.x_y-z"}),
    *[("created", {"bcu": b}) for b in "AW AS CE CN EA NA NE NW SE SN SW WA".split()],
    *[("created", {"caller": c}) for c in ("public", "partner_social_care", "partner_other")],
    *[("graded", {"grade": g}) for g in "ISER"],
    ("graded", {"bcu": "NE"}),
    ("resource_assigned", {"officers": 1}),
    ("resource_assigned", {"officers": 10}),
    *[("s136_arrived_pos", {"place": p}) for p in ("ED", "police_station")],
    ("closed", {"closing_code": "NFA"}),
]

REJECTED = [
    ("created", {"schema": "cad.incident-event/2"}, "schema must be"),
    ("created", {"schema": _DROP}, "schema must be"),
    ("created", {"event_id": _DROP}, "event_id is required"),
    ("created", {"event_id": ""}, "event_id does not match"),
    ("created", {"event_id": "a" * 65}, "event_id does not match"),
    ("created", {"event_id": "has space"}, "event_id does not match"),
    ("created", {"event_id": "slash/no"}, "event_id does not match"),
    ("created", {"event_id": 12}, "event_id must be a string"),
    ("created", {"incident_id": _DROP}, "incident_id is required"),
    ("created", {"incident_id": "x" * 65}, "incident_id does not match"),
    ("created", {"incident_id": "bad#id"}, "incident_id does not match"),
    ("created", {"type": "opened"}, "type must be one of"),
    ("created", {"type": _DROP}, "type is required"),
    ("created", {"occurred_at": _DROP}, "occurred_at is required"),
    ("created", {"occurred_at": "2023-11-01T10:00:00"}, "RFC 3339"),
    ("created", {"occurred_at": "2023-11-01 10:00:00Z"}, "RFC 3339"),
    ("created", {"occurred_at": "yesterday"}, "RFC 3339"),
    ("created", {"occurred_at": 1698832800}, "occurred_at is required and must be a string"),
    ("created", {"bcu": _DROP}, "bcu is required"),
    ("created", {"bcu": "XX"}, "bcu must be one of"),
    ("created", {"bcu": "se"}, "bcu must be one of"),
    ("graded", {"bcu": "ZZ"}, "bcu must be one of"),
    ("created", {"opening_code": _DROP}, "opening_code is required"),
    ("created", {"caller": _DROP}, "caller is required"),
    ("created", {"caller": "partner"}, "caller must be one of"),
    ("created", {"grade": "X"}, "grade must be one of"),
    ("created", {"summary": 5}, "summary must be a string"),
    ("graded", {"grade": _DROP}, "grade is required"),
    ("graded", {"grade": "i"}, "grade must be one of"),
    ("classified", {"opening_code": _DROP}, "opening_code is required"),
    ("resource_assigned", {"resource_id": _DROP}, "resource_id is required"),
    ("resource_assigned", {"officers": _DROP}, "officers is required"),
    ("resource_assigned", {"officers": 0}, "between 1 and 10"),
    ("resource_assigned", {"officers": 11}, "between 1 and 10"),
    ("resource_assigned", {"officers": 1.5}, "officers must be an integer"),
    ("resource_assigned", {"officers": "2"}, "officers must be an integer"),
    ("resource_assigned", {"officers": True}, "officers must be an integer"),
    ("resource_arrived", {"resource_id": _DROP}, "resource_id is required"),
    ("resource_cleared", {"resource_id": ""}, "resource_id does not match"),
    ("s136_arrived_pos", {"place": _DROP}, "place is required"),
    ("s136_arrived_pos", {"place": "home"}, "place must be one of"),
    ("closed", {"closing_code": 7}, "closing_code must be a string"),
]


@pytest.mark.parametrize(("kind", "changes"), ACCEPTED)
def test_accepted(kind: str, changes: dict[str, Any]) -> None:
    doc = _event(kind, **changes)
    event = validate_event(doc)
    assert event.type == doc["type"]
    assert event.incident_id == doc["incident_id"]
    assert _schema_accepts(doc)


@pytest.mark.parametrize(("kind", "changes", "reason"), REJECTED)
def test_rejected_with_reason(kind: str, changes: dict[str, Any], reason: str) -> None:
    doc = _event(kind, **changes)
    with pytest.raises(ContractError) as caught:
        validate_event(doc)
    assert caught.value.reason == "schema_violation"
    assert reason in caught.value.detail
    assert not _schema_accepts(doc)


def test_rejection_detail_never_echoes_a_value() -> None:
    doc = _event("created", bcu="Jane Doe 07700900123")
    with pytest.raises(ContractError) as caught:
        validate_event(doc)
    assert "Jane" not in str(caught.value)


def test_time_is_parsed_to_epoch_milliseconds_with_offset() -> None:
    a = validate_event(_event(occurred_at="2023-11-01T10:00:00.123+01:00"))
    b = validate_event(_event(occurred_at="2023-11-01T09:00:00.123Z"))
    assert a.occurred_at_ms == b.occurred_at_ms == 1698829200123


def test_impossible_date_is_rejected() -> None:
    with pytest.raises(ContractError, match="real date"):
        validate_event(_event(occurred_at="2023-02-30T10:00:00Z"))


def test_decode_rejects_oversized_and_malformed() -> None:
    big = json.dumps(_event(summary="x" * 70_000)).encode()
    with pytest.raises(ContractError) as over:
        decode_event(big)
    assert over.value.reason == "oversized"
    for raw in (b"{not json", b"\xff\xfe", b""):
        with pytest.raises(ContractError) as bad:
            decode_event(raw)
        assert bad.value.reason == "malformed_json"
    with pytest.raises(ContractError) as array:
        decode_event(b"[1, 2]")
    assert array.value.reason == "schema_violation"


def test_summary_is_not_kept() -> None:
    event = validate_event(_event(summary="Caller John Smith"))
    assert "John" not in repr(event)


CANARY = "CANARY-PII-7f3a"


def _raw(doc: dict[str, Any], tail: str = "") -> bytes:
    """``doc`` as JSON with ``tail`` (raw JSON text) spliced in as the last members."""
    text = json.dumps(doc)
    return (text[:-1] + ", " + tail + "}").encode() if tail else text.encode()


def _nested(levels: int) -> dict[str, Any]:
    """A valid event whose unknown field makes the whole message ``levels`` deep."""
    inner: Any = CANARY
    for _ in range(levels - 1):
        inner = {"x": inner}
    return _event(summary=CANARY, unknown=inner)


HOSTILE: list[tuple[str, bytes, str, str]] = [
    ("60,000 [", b'["' + CANARY.encode() + b'",' + b"[" * 60_000, "malformed_json", "nests deeper"),
    ("13,000 {a:", b'{"' + CANARY.encode() + b'":' + b'{"a":' * 13_000, "malformed_json", "nests"),
    ("6 deep unknown field", json.dumps(_nested(6)).encode(), "malformed_json", "nests deeper"),
    (
        "5,000 digits",
        _raw(_event(summary=CANARY), '"x": ' + "7" * 5000),
        "malformed_json",
        "number",
    ),
    ("21 digits", _raw(_event(), '"x": -' + "9" * 21), "malformed_json", "number"),
    ("1e400", _raw(_event(summary=CANARY), '"x": 1e400'), "malformed_json", "number"),
    ("-1e400", _raw(_event(), '"x": [-1e400]'), "malformed_json", "number"),
    ("NaN", _raw(_event(summary=CANARY), '"x": NaN'), "malformed_json", "NaN"),
    ("Infinity", _raw(_event(), '"x": -Infinity'), "malformed_json", "NaN or Infinity"),
    ("bad UTF-8", _raw(_event(), f'"x": "{CANARY}') + b'\xff"}', "malformed_json", "UTF-8"),
    ("UTF-8 surrogate", _raw(_event(), '"x": "') + b'\xed\xa0\x80"}', "malformed_json", "UTF-8"),
    ("UTF-16", json.dumps(_event(summary=CANARY)).encode("utf-16"), "malformed_json", "UTF-8"),
    ("UTF-16-LE", json.dumps(_event()).encode("utf-16-le"), "malformed_json", "UTF-8"),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + json.dumps(_event()).encode(), "malformed_json", "UTF-8"),
    ("lone surrogate", _raw(_event(), f'"x": "{CANARY}\\udc00"'), "malformed_json", "surrogate"),
    ("repeat top", _raw(_event(), f'"event_id": "{CANARY}"'), "malformed_json", "repeats a name"),
    (
        "repeat deep",
        _raw(_event(), f'"n": [{{"t": 1, "t": "{CANARY}"}}]'),
        "malformed_json",
        "repeats",
    ),
    ("empty", b"", "malformed_json", "UTF-8 JSON"),
    ("trailing data", _raw(_event()) + b" {}", "malformed_json", "UTF-8 JSON"),
    ("top-level array", f'["{CANARY}"]'.encode(), "schema_violation", "JSON object"),
    ("JSON string", f'"{CANARY}"'.encode(), "schema_violation", "JSON object"),
    ("oversized", json.dumps(_event(summary=CANARY * 5000)).encode(), "oversized", "over 65536"),
]


@pytest.mark.parametrize(
    ("raw", "reason", "detail"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_messages_get_a_fixed_reason_and_no_value_in_the_detail(
    raw: bytes, reason: str, detail: str
) -> None:
    with pytest.raises(ContractError) as caught:
        decode_event(raw)
    assert caught.value.reason == reason
    assert detail in caught.value.detail
    assert CANARY not in str(caught.value) and "7777" not in str(caught.value)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert MAX_DEPTH == 5
    assert decode_event(json.dumps(_nested(5)).encode()).event_id == "ev-1"
    with pytest.raises(ContractError, match="nests deeper than 5 levels"):
        decode_event(json.dumps(_nested(6)).encode())
    # Brackets inside strings are text, not nesting.
    assert decode_event(json.dumps(_event(summary="[[[[[[{{{{{{" * 50)).encode())


def test_deep_nesting_is_refused_fast_without_recursion() -> None:
    for raw, limit in ((b"[" * 60_000, MAX_MESSAGE_BYTES), (b'{"a":' * 60_000, 1024 * 1024)):
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            with pytest.raises(ContractError, match="nests deeper"):
                decode_event(raw, limit)
            best = min(best, time.perf_counter() - start)
        assert best < 0.05
    # Even with the recursion limit far below what the parser would need.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises(ContractError):
            decode_event(b"[" * 60_000)
    finally:
        sys.setrecursionlimit(old)


def test_numbers_fields_can_take_are_accepted() -> None:
    for tail in ('"x": ' + "9" * 20, '"x": -' + "9" * 20, '"x": 1e308', '"x": 1e-400', '"x": 0.5'):
        assert decode_event(_raw(_event(), tail)).event_id == "ev-1"
    event = decode_event(_raw(_event("resource_assigned", officers=_DROP), '"officers": 10'))
    assert event.officers == 10


def test_valid_text_escapes_are_accepted() -> None:
    # A surrogate pair is one valid character; an escaped backslash is not an escape.
    for text in ('"x": "\\ud83d\\ude00"', '"x": "\\\\udc00"', '"x": "caf\\u00e9"'):
        assert decode_event(_raw(_event(), text)).event_id == "ev-1"


def test_personal_data_in_summary_and_unknown_fields_is_accepted_and_dropped() -> None:
    raw = json.dumps(_event(summary=CANARY, notes={"text": CANARY})).encode()
    event = decode_event(raw)
    assert CANARY not in repr(event)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='[]{}",:\\u0123456789abcdefeE.-+ NaInfity\xff\x00\ud800', max_size=300),
    )
)
def test_decode_raises_nothing_but_contract_errors(data: bytes | str) -> None:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    try:
        decode_event(raw)
    except ContractError as exc:
        assert exc.reason in ("malformed_json", "schema_violation")


def test_field_rules_keep_only_valid_contract_fields() -> None:
    doc = _event("resource_assigned", summary=CANARY, notes={"t": CANARY}, bcu=CANARY)
    doc.update(opening_code=CANARY + "!", officers=True, closing_code="NFA")
    kept = valid_fields(doc)
    assert kept == {
        "schema": "cad.incident-event/1",
        "event_id": "ev-1",
        "incident_id": "CAD/2023/11/000001",
        "type": "resource_assigned",
        "occurred_at": "2023-11-01T10:00:00Z",
        "resource_id": "SE12A",
        "closing_code": "NFA",
    }
    assert set(FIELD_RULES) == set(SCHEMA["properties"]) - {"summary"}


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "0001-01-01t00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
        "2023-02-29T00:00:00Z",
        "2023-11-03T14:22:05.1234567890Z",
    ],
)
def test_edge_timestamps_give_a_time_or_a_contract_error(text: str) -> None:
    """Whatever the date, reading it never raises anything but ContractError (the dead
    letter builder and the worker rely on it)."""
    with contextlib.suppress(ContractError):
        assert isinstance(parse_timestamp_ms(text), int)


# The quick path (orjson) must read exactly what the exact parser reads, or step aside.
_FLAT = (
    b'{"schema":"demandmon.incident.v1","event_id":"e1","incident_id":"i1","type":"created",'
    b'"occurred_at":"2024-01-01T00:00:00Z","bcu":"SE","officers":2,"x":null,"y":true}'
)
_MUTATIONS = b'{}[]":,\\ \t\n0123456789eE.-+tfnulr\x00\x1f\x7f\xc3\xa9\xff'


def _exact(raw: bytes) -> object:
    try:
        return message._DECODER.decode(raw.decode("utf-8"))
    except Exception:
        return None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"a" :1,"a":2}',
        b'{"a":1,\n"a"\t:2}',
        b'{"a":"x\\":","a":2}',
        b'{"a":18446744073709551616}',
        b'{"a":1e400}',
        b'{"a":NaN}',
        b'{"a":"\\ud800"}',
        b"\xef\xbb\xbf{}",
    ],
)
def test_quick_path_steps_aside_for_what_only_the_exact_parser_judges(raw: bytes) -> None:
    assert message._quick(raw) is None


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_FLAT)), st.sampled_from(_MUTATIONS), st.booleans())))
def test_quick_path_reads_what_the_exact_parser_reads(edits: list[tuple[int, int, bool]]) -> None:
    raw = bytearray(_FLAT)
    for pos, byte, insert in edits:
        if insert or pos >= len(raw):
            raw[pos:pos] = bytes([byte])
        else:
            raw[pos] = byte
    quick = message._quick(bytes(raw))
    if quick is not None:
        exact = _exact(bytes(raw))
        assert exact == quick
        assert isinstance(exact, dict)
        assert [type(v) for v in exact.values()] == [type(v) for v in quick.values()]
