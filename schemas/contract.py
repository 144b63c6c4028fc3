"""Incident event contract v1: decode and validate one CAD event.

Hand-written rather than generated from the JSON Schema because the worker needs a short,
personal-data-free rejection reason for every failure, and speed on the hot path. A unit
test checks that this model and ``incident-event-v1.schema.json`` agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

SCHEMA_ID: Final = "cad.incident-event/1"
MAX_MESSAGE_BYTES: Final = 64 * 1024

BCU_CODES: Final = ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA")
GRADES: Final = ("I", "S", "E", "R")
CALLERS: Final = ("public", "partner_health", "partner_social_care", "partner_other")
PLACES: Final = ("ED", "HBPOS", "police_station")
EVENT_TYPES: Final = (
    "created",
    "graded",
    "classified",
    "resource_assigned",
    "resource_arrived",
    "resource_cleared",
    "s136_detained",
    "s136_arrived_pos",
    "s136_handover",
    "closed",
    "cancelled",
)

_REQUIRED: Final[dict[str, frozenset[str]]] = {
    "created": frozenset({"bcu", "opening_code", "caller"}),
    "graded": frozenset({"grade"}),
    "classified": frozenset({"opening_code"}),
    "resource_assigned": frozenset({"resource_id", "officers"}),
    "resource_arrived": frozenset({"resource_id"}),
    "resource_cleared": frozenset({"resource_id"}),
    "s136_arrived_pos": frozenset({"place"}),
}
_NOTHING: Final[frozenset[str]] = frozenset()

_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_INCIDENT_ID = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_RESOURCE_ID = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_CODE = re.compile(r"[A-Za-z0-9_./ -]{1,64}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_FRACTION = re.compile(r"\.(\d+)")


class ContractError(ValueError):
    """Why an event breaks the contract. ``reason`` is a fixed kind, ``detail`` names the
    field and rule only: never a value from the event, which may hold personal data."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    event_id: str
    incident_id: str
    type: str
    occurred_at_ms: int
    bcu: str | None = None
    opening_code: str | None = None
    caller: str | None = None
    grade: str | None = None
    resource_id: str | None = None
    officers: int | None = None
    place: str | None = None
    closing_code: str | None = None


def _schema_error(detail: str) -> ContractError:
    return ContractError("schema_violation", detail)


def _string(
    doc: dict[str, Any], field: str, pattern: re.Pattern[str], required: bool
) -> str | None:
    if field not in doc:
        if required:
            raise _schema_error(f"{field} is required")
        return None
    value = doc[field]
    if not isinstance(value, str):
        raise _schema_error(f"{field} must be a string")
    if not pattern.fullmatch(value):
        raise _schema_error(f"{field} does not match {pattern.pattern}")
    return value


def _choice(
    doc: dict[str, Any], field: str, allowed: tuple[str, ...], required: bool
) -> str | None:
    if field not in doc:
        if required:
            raise _schema_error(f"{field} is required")
        return None
    value = doc[field]
    if not isinstance(value, str) or value not in allowed:
        raise _schema_error(f"{field} must be one of {' '.join(allowed)}")
    return value


def parse_timestamp_ms(text: str) -> int:
    """RFC 3339 with an explicit offset to epoch milliseconds (sub-ms digits truncated)."""
    if not _RFC3339.fullmatch(text):
        raise _schema_error("occurred_at must be an RFC 3339 timestamp with an offset")
    normal = text.replace("z", "Z").replace("t", "T").replace("Z", "+00:00")
    # fromisoformat takes at most 6 fractional digits; milliseconds are all we keep.
    normal = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), normal)
    try:
        moment = datetime.fromisoformat(normal)
    except ValueError:
        raise _schema_error("occurred_at is not a real date and time") from None
    whole = int(moment.timestamp())
    return whole * 1000 + moment.microsecond // 1000


def validate_event(doc: object) -> IncidentEvent:
    """Check one decoded JSON value against contract v1; unknown extra fields are ignored."""
    if not isinstance(doc, dict):
        raise _schema_error("event must be a JSON object")
    if doc.get("schema") != SCHEMA_ID:
        raise _schema_error(f"schema must be {SCHEMA_ID}")
    event_id = _string(doc, "event_id", _EVENT_ID, True)
    incident_id = _string(doc, "incident_id", _INCIDENT_ID, True)
    kind = _choice(doc, "type", EVENT_TYPES, True)
    occurred = doc.get("occurred_at")
    if not isinstance(occurred, str):
        raise _schema_error("occurred_at is required and must be a string")
    occurred_ms = parse_timestamp_ms(occurred)
    if "summary" in doc and not isinstance(doc["summary"], str):
        raise _schema_error("summary must be a string")
    assert event_id is not None and incident_id is not None and kind is not None
    # Known fields are checked wherever they appear (as the JSON Schema does); each type
    # then requires its own.
    need = _REQUIRED.get(kind, _NOTHING)
    bcu = _choice(doc, "bcu", BCU_CODES, "bcu" in need)
    opening_code = _string(doc, "opening_code", _CODE, "opening_code" in need)
    caller = _choice(doc, "caller", CALLERS, "caller" in need)
    grade = _choice(doc, "grade", GRADES, "grade" in need)
    resource_id = _string(doc, "resource_id", _RESOURCE_ID, "resource_id" in need)
    place = _choice(doc, "place", PLACES, "place" in need)
    closing_code = _string(doc, "closing_code", _CODE, False)
    officers = doc.get("officers")
    if "officers" not in doc:
        if "officers" in need:
            raise _schema_error("officers is required")
    # bool is an int in Python; the contract means a JSON integer.
    elif isinstance(officers, bool) or not isinstance(officers, int):
        raise _schema_error("officers must be an integer")
    elif not 1 <= officers <= 10:
        raise _schema_error("officers must be between 1 and 10")
    return IncidentEvent(
        event_id=event_id,
        incident_id=incident_id,
        type=kind,
        occurred_at_ms=occurred_ms,
        bcu=bcu,
        opening_code=opening_code,
        caller=caller,
        grade=grade,
        resource_id=resource_id,
        officers=officers,
        place=place,
        closing_code=closing_code,
    )


def decode_event(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> IncidentEvent:
    """Bytes off the wire to a valid event, or a ContractError naming the reason."""
    if len(raw) > max_bytes:
        raise ContractError("oversized", f"message is over {max_bytes} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ContractError("malformed_json", "message is not valid UTF-8 JSON") from None
    return validate_event(doc)
