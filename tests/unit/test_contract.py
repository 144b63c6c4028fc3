"""Event contract v1: every field rule, accepted and rejected, with the reason; and the
Python model agrees with the JSON Schema file on every case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schemas import ContractError, decode_event, validate_event

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
