"""Dead-letter records: why a message was refused and where it came from, without any
free text. Building one never fails, whatever the message held.

The value is compact JSON (sorted keys) of the contract's own fields that pass their own
rule, parsed with the same safe, bounded parser as ``decode_event``: never ``summary``,
never an unknown field, never anything nested, never free text where a code belongs (the
detail header names the failing field). It is empty when nothing qualifies, the payload
does not parse as a JSON object, or the message was oversized; the original is still at
topic/partition/offset."""

from __future__ import annotations

import json
import re

from agents.batch import Rejection
from schemas.contract import valid_fields
from schemas.message import parse_json
from schemas.vocabulary import OVERSIZED, SOURCE_HEADER

# The most a worker accepts (Settings.max_message_bytes has this ceiling): anything larger
# was refused as oversized and is never parsed again.
MAX_REPARSE_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 200
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def contract_value(raw: bytes | None) -> bytes | None:
    """The dead-letter value for a payload; None when nothing qualifies. Never raises."""
    try:
        if not raw or len(raw) > MAX_REPARSE_BYTES:
            return None
        doc = parse_json(bytes(raw), MAX_REPARSE_BYTES)
        if not isinstance(doc, dict):
            return None
        kept = valid_fields(doc)
        if not kept:
            return None
        return json.dumps(kept, separators=(",", ":"), sort_keys=True).encode("ascii")
    except Exception:  # a contract error or anything unforeseen: no value, never a failure
        return None


def header_value(value: object) -> bytes:
    """Printable ASCII, at most MAX_HEADER_BYTES bytes; anything else becomes ``?``."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = "?"
    return _NOT_PRINTABLE_ASCII.sub("?", text[:MAX_HEADER_BYTES]).encode("ascii")


def deadletter_headers(rejection: Rejection) -> list[tuple[str, bytes]]:
    msg = rejection.message
    return [
        ("demandmon-reason", header_value(rejection.reason)),
        ("demandmon-detail", header_value(rejection.detail)),
        (SOURCE_HEADER, header_value(rejection.source)),
        ("demandmon-topic", header_value(msg.topic)),
        ("demandmon-partition", header_value(msg.partition)),
        ("demandmon-offset", header_value(msg.offset)),
    ]


def deadletter_key(rejection: Rejection) -> bytes:
    """Where the refused message sits; Kafka needs a key or a value, and the value may be
    empty."""
    msg = rejection.message
    return _NOT_PRINTABLE_ASCII.sub("?", f"{msg.topic}/{msg.partition}/{msg.offset}").encode()


def deadletter_value(rejection: Rejection) -> bytes | None:
    # Oversized messages are not re-parsed: the size limit protects the worker too.
    if rejection.reason == OVERSIZED:
        return None
    return contract_value(rejection.message.value)
