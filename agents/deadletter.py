"""Dead-letter records: why a message was refused and where it came from, without any
free text. The value is the event with ``summary`` removed when it parses as a JSON
object, and empty otherwise (the original is still at topic/partition/offset)."""

from __future__ import annotations

import json

from agents.batch import Rejection

SCRUBBED_FIELDS = ("summary",)


def scrubbed_value(raw: bytes | None) -> bytes | None:
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    for name in SCRUBBED_FIELDS:
        doc.pop(name, None)
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def deadletter_headers(rejection: Rejection) -> list[tuple[str, bytes]]:
    msg = rejection.message
    return [
        ("demandmon-reason", rejection.reason.encode()),
        ("demandmon-detail", rejection.detail.encode()),
        ("demandmon-source", rejection.source.encode()),
        ("demandmon-topic", msg.topic.encode()),
        ("demandmon-partition", str(msg.partition).encode()),
        ("demandmon-offset", str(msg.offset).encode()),
    ]


def deadletter_key(rejection: Rejection) -> bytes:
    """Where the refused message sits; Kafka needs a key or a value, and the value may be
    empty."""
    msg = rejection.message
    return f"{msg.topic}/{msg.partition}/{msg.offset}".encode()


def deadletter_value(rejection: Rejection) -> bytes | None:
    # Oversized messages are not re-parsed: the size limit protects the worker too.
    if rejection.reason == "oversized":
        return None
    return scrubbed_value(rejection.message.value)
