"""The replay's first reading of its file: how many events it holds, their time span, and
which lines can be sent as they are (see streams.replay.reader). Lines are checked a
whole chunk at a time (streams.replay.chunks); a chunk that does not pass is halved, and
a few lines are checked one by one, by the fast path or the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas import ContractError
from streams.replay import chunks
from streams.replay.reader import (
    BULK_LEAST,
    KEEP_BYTES,
    FileScan,
    Record,
    canonical,
    classify,
    fast_doc,
    file_identity,
    line_batches,
    text_lines,
)
from streams.replay.timing import timestamp_ms, timestamp_valid

_MARKED = b"\x01"  # in FileScan.as_is: the line can be sent as it is


@dataclass(frozen=True, slots=True)
class Checked:
    """A chunk whose every line chunks.sendable passed: the key of each line, and the
    span of their event times (when asked for)."""

    keys: list[bytes]
    first_ms: int | None
    last_ms: int | None


def check(lines: list[bytes], times: bool) -> Checked | None:
    """chunks.sendable on a chunk, put as the scan takes it."""
    if len(lines) < BULK_LEAST:
        return None
    found = chunks.sendable(lines)
    if found is None:
        return None
    incidents, stamps = found
    keys = list(map(str.encode, incidents))
    if not times:
        return Checked(keys, None, None)
    occurred = list(map(timestamp_ms, stamps))
    return Checked(keys, min(occurred), max(occurred))


def scan(path: Path, times: bool) -> FileScan:
    """Count the events the file holds, find their time span when ``times`` (else only
    check each event time), and mark the lines that can be sent as they are."""
    found = FileScan(identity=file_identity(path))
    number = kept_bytes = 0
    for lines, ended in line_batches(path):
        if found.kept is not None:
            kept_bytes += sum(map(len, lines))
            if kept_bytes <= KEEP_BYTES:
                found.kept.append((lines, ended))
            else:  # too big to keep: read again to send
                found.kept = found.keys = None
        number = _scan_lines(lines, ended, number, found, times)
    return found


def _add(found: FileScan, checked: Checked, count: int, times: bool) -> None:
    if found.keys is not None:
        found.keys.extend(checked.keys)
    if times and checked.first_ms is not None and checked.last_ms is not None:
        found.add_span(count, checked.first_ms, checked.last_ms)
    else:
        found.count += count
    found.as_is.extend(_MARKED * count)


def _scan_lines(lines: list[bytes], ended: bool, number: int, found: FileScan, times: bool) -> int:
    """Scan ``lines`` after line ``number`` (``ended``: the last one had its \\n): all at
    once when chunks.sendable passes them, else in halves, down to a few lines taken one
    by one (so that a few odd lines cost little). Returns the last line number."""
    if len(lines) >= BULK_LEAST:
        checked = check(lines, times)
        if checked is not None:
            _add(found, checked, len(lines), times)
            return number + len(lines)
        half = len(lines) // 2
        number = _scan_lines(lines[:half], True, number, found, times)
        return _scan_lines(lines[half:], ended, number, found, times)
    last = len(lines) - 1
    for at, line in enumerate(lines):
        number += 1
        if _scan_fast(line, found, times):
            continue
        found.as_is.append(0)
        if found.keys is not None:
            found.keys.append(b"")
        pieces = text_lines(line, ended or at < last)
        for item in classify(number, pieces):
            if type(item) is not Record:
                continue
            if times:
                found.add(item.occurred_ms)
            else:
                found.count += 1
        number += len(pieces) - 1
    return number


def _scan_fast(line: bytes, found: FileScan, times: bool) -> bool:
    """Scan one line by the fast path; False when the reference path must decide."""
    fast = fast_doc(line)
    if fast is None:
        return False
    raw, doc = fast
    incident, occurred = doc["incident_id"], doc["occurred_at"]
    assert type(incident) is str and type(occurred) is str
    if not times:
        if not timestamp_valid(occurred):
            return False
        found.count += 1
    else:
        try:
            found.add(timestamp_ms(occurred))
        except ContractError:
            return False
    as_is = canonical(raw, doc)
    found.as_is.append(as_is)
    if as_is and len(raw) < len(line):
        found.crlf = True
    if found.keys is not None:
        found.keys.append(incident.encode() if as_is else b"")
    return True
