"""Read a replay file (JSON Lines, gzip when the name ends ``.gz``) into sendable records.

Only what sending needs is looked at: the incident id (the Kafka key) and the event time
(for pacing, ``--shift`` and ``--rebase``). Full validation is the worker's job, so a
replay sends what the CAD feed would have sent; lines that cannot be sent at all are
skipped and reported by line number and reason, never by content.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from schemas import ContractError
from schemas.contract import parse_timestamp_ms


class ReplayFileError(Exception):
    """The file as a whole cannot be read."""


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    key: bytes
    occurred_ms: int
    doc: dict[str, object]


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int
    reason: str


def open_lines(path: Path) -> IO[str]:
    if not path.exists():
        raise ReplayFileError(f"{path}: no such file")
    if path.is_dir():
        raise ReplayFileError(f"{path}: is a directory, not an event file")
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReplayFileError(f"{path}: cannot open ({exc.strerror})") from None


def read_records(path: Path) -> Iterator[Record | Skipped]:
    with open_lines(path) as lines:
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                yield parse_line(number, line)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReplayFileError(f"{path}: unreadable ({type(exc).__name__})") from None


def parse_line(number: int, line: str) -> Record | Skipped:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        return Skipped(number, "not JSON")
    if not isinstance(doc, dict):
        return Skipped(number, "not a JSON object")
    incident = doc.get("incident_id")
    if not isinstance(incident, str) or not incident:
        return Skipped(number, "no incident_id")
    occurred = doc.get("occurred_at")
    if not isinstance(occurred, str):
        return Skipped(number, "no occurred_at")
    try:
        occurred_ms = parse_timestamp_ms(occurred)
    except ContractError:
        return Skipped(number, "bad occurred_at")
    return Record(number, incident.encode(), occurred_ms, doc)


def format_ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(record: Record, shift_ms: int) -> bytes:
    """The event as sent: the original JSON, with occurred_at moved when shifted."""
    doc = record.doc
    if shift_ms:
        doc = {**doc, "occurred_at": format_ms(record.occurred_ms + shift_ms)}
    return json.dumps(doc, separators=(",", ":")).encode()
