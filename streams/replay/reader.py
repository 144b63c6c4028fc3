"""Read a replay file (JSON Lines, gzip when the name ends ``.gz``) into sendable records.

Only what sending needs is looked at: the incident id (the Kafka key) and the event time
(for pacing, ``--shift`` and ``--rebase``). Full validation is the worker's job, so a
replay sends what the CAD feed would have sent; lines that cannot be sent at all are
skipped and reported by line number and reason, never by content.

What a line is and what makes it unreadable is defined by the reference path: the file
read as UTF-8 text (undecodable bytes replaced), lines split as Python's text files split
them (``\\n``, ``\\r\\n`` or a lone ``\\r``), blank lines passed over, each other line
classified by ``parse_line`` and, when sent, written by ``json.dumps`` (compact). The fast
path (bytes split on ``\\n``, orjson) takes only the lines where it gives exactly that
result (see ``fast_doc``); every other line goes the reference way, so the records, the
skipped line numbers and reasons, and the bytes sent are the same whichever way a line
went. A replay reads the file first to count its events and find the lines that can be
sent as they are (streams.replay.scan), then sends them (``read_records``): from memory
when the file is small enough to keep (KEEP_BYTES), else reading it again.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from schemas import ContractError
from schemas.contract import parse_timestamp_ms
from streams.replay import chunks
from streams.replay.timing import format_ms, timestamp_ms

# Bytes read at a time (decompressed): lines are split out of them in C.
CHUNK = 1 << 20
# Lines checked together at the least (see chunks.sendable); fewer go one by one.
BULK_LEAST = 64
# Files up to this size (decompressed) are kept in memory between the scan and sending.
KEEP_BYTES = 256 << 20


class ReplayFileError(Exception):
    """The file as a whole cannot be read."""


@dataclass(slots=True)
class Record:
    line: int
    key: bytes
    occurred_ms: int
    doc: dict[str, object]
    # The line's own bytes (no line end) when the fast path read it: then sent as they
    # are if they equal what json.dumps writes (see ``encode``).
    raw: bytes | None = None


@dataclass(slots=True)
class Batch:
    """Lines in a row that the scan found sendable as they are (unshifted): their keys
    and bytes. ``first`` is the number of the first."""

    first: int
    keys: list[bytes]
    values: list[bytes]


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int
    reason: str


@dataclass
class FileScan:
    """What the first reading found: the events to send, their time span (when asked
    for), and which lines (split on ``\\n``, counted from 0) can be sent as they are."""

    count: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    as_is: bytearray = field(default_factory=bytearray)
    identity: tuple[int, int, int] = (0, 0, 0)
    # A file of at most KEEP_BYTES (once decompressed) is kept from the scan, with the
    # key of each line marked (b"" for the others), so that it is read and parsed once.
    kept: list[tuple[list[bytes], bool]] | None = field(default_factory=list)
    keys: list[bytes] | None = field(default_factory=list)
    # Whether a marked line ends with \r (\r\n line ends): sent without it.
    crlf: bool = False

    def add(self, occurred_ms: int) -> None:
        self.count += 1
        if self.first_ms is None or occurred_ms < self.first_ms:
            self.first_ms = occurred_ms
        if self.last_ms is None or occurred_ms > self.last_ms:
            self.last_ms = occurred_ms

    def add_span(self, count: int, first_ms: int, last_ms: int) -> None:
        self.count += count
        self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)


def file_identity(path: Path) -> tuple[int, int, int]:
    status = os.stat(path)
    return status.st_ino, status.st_size, status.st_mtime_ns


def open_binary(path: Path) -> io.BufferedIOBase:
    if not path.exists():
        raise ReplayFileError(f"{path}: no such file")
    if path.is_dir():
        raise ReplayFileError(f"{path}: is a directory, not an event file")
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise ReplayFileError(f"{path}: cannot open ({exc.strerror})") from None


def line_batches(path: Path) -> Iterator[tuple[list[bytes], bool]]:
    """The file's lines split on ``\\n``, without it, in lists; True while each line had
    its ``\\n`` (all but a last line without one)."""
    parts: list[bytes] = []  # the start of a line that goes on in the next chunk
    for chunk in _chunks(path):
        parts.append(chunk)
        if b"\n" not in chunk:
            continue  # one long line: joined once, when it ends (never quadratic)
        lines = b"".join(parts).split(b"\n")
        parts = [lines.pop()]
        yield lines, True
    rest = b"".join(parts)
    if rest:
        yield [rest], False


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes (decompressed), CHUNK at a time."""
    with open_binary(path) as stream:
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        except (OSError, EOFError, zlib.error) as exc:
            raise ReplayFileError(f"{path}: unreadable ({type(exc).__name__})") from None


def read_records(path: Path, scanned: FileScan | None = None) -> Iterator[Record | Batch | Skipped]:
    """Every non-blank line of the file, numbered from 1 as a text editor numbers them, as
    a Record to send or the reason it is Skipped. Given the file's ``scan`` (of the same
    file, unchanged since), the lines it marked come in Batches, to send as they are."""
    as_is = scanned.as_is if scanned is not None else bytearray()
    kept = scanned.kept if scanned is not None else None
    known = scanned.keys if scanned is not None else None
    crlf = scanned is not None and scanned.crlf
    if kept is None and scanned is not None and file_identity(path) != scanned.identity:
        raise ReplayFileError(f"{path}: changed since it was read to count its events")
    index = 0  # of the first of ``lines`` among all lines split on \n
    number = 0  # the last line number given out
    for lines, ended in line_batches(path) if kept is None else kept:
        last = len(lines) - 1
        at = 0  # lines[:at] are done
        while at <= last:
            upto = _marked_until(as_is, index + at, index + len(lines)) - index
            if upto - at >= BULK_LEAST:
                run = lines[at:upto]
                if crlf:
                    run = [line[:-1] if line.endswith(b"\r") else line for line in run]
                if known is not None:
                    run_keys: list[bytes] | None = known[index + at : index + upto]
                else:
                    run_keys = chunks.keys(run)
                if run_keys is not None:
                    yield Batch(number + 1, run_keys, run)
                    number += len(run)
                    at = upto
                    continue
            upto = max(upto, at + 1)  # a few lines, or one unmarked: one by one
            for offset, line in enumerate(lines[at:upto], start=at):
                number += 1
                record = fast_line(number, line)
                if record is not None:
                    yield record
                    continue
                pieces = text_lines(line, ended or offset < last)
                yield from classify(number, pieces)
                number += len(pieces) - 1
            at = upto
        index += len(lines)


def _marked_until(as_is: bytearray, start: int, end: int) -> int:
    """The first line from ``start`` (up to ``end``) that is not marked as sendable as
    it is; ``start`` itself when it is not."""
    end = min(end, len(as_is))
    if start >= end:
        return start
    stop = as_is.find(0, start, end)
    return end if stop < 0 else stop


def fast_doc(line: bytes) -> tuple[bytes, dict[str, object]] | None:
    """A line (bytes without its ``\\n``) that the fast path reads as the reference path
    would, up to its event time: the line without a final ``\\r``, and its object, which
    has an incident id and an event time (both strings). Else None, and the caller takes
    the reference path (``text_lines`` and ``classify``)."""
    if b"\r" in line:
        if b"\r" in line[:-1]:
            return None  # a lone \r ends a line in text mode: the reference path splits it
        line = line[:-1]  # \r\n: one line end in text mode
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or not chunks.FLAT.issuperset(map(type, doc.values())):
        return None
    incident = doc.get("incident_id")
    if type(incident) is not str or not incident or type(doc.get("occurred_at")) is not str:
        return None
    return line, doc


def fast_line(number: int, line: bytes) -> Record | None:
    """The Record of a line the fast path reads as the reference path would, else None."""
    fast = fast_doc(line)
    if fast is None:
        return None
    raw, doc = fast
    incident, occurred = doc["incident_id"], doc["occurred_at"]
    assert type(incident) is str and type(occurred) is str
    try:
        occurred_ms = timestamp_ms(occurred)
    except ContractError:
        return None  # the reference path says why
    return Record(number, incident.encode(), occurred_ms, doc, raw)


def text_lines(line: bytes, ended: bool) -> list[str]:
    """The reference reading of one line of bytes split on ``\\n`` (``ended``: it had its
    ``\\n``): decoded as UTF-8 with undecodable bytes replaced, then split where a text
    file splits (``\\r\\n``, a lone ``\\r``), so one or more lines of text."""
    text = line.decode("utf-8", errors="replace") + ("\n" if ended else "")
    pieces = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if pieces[-1] == "" and len(pieces) > 1:
        pieces.pop()
    return pieces


def classify(first: int, lines: list[str]) -> Iterator[Record | Skipped]:
    """``parse_line`` for each line of text numbered from ``first``, blank ones passed over."""
    for offset, line in enumerate(lines):
        if line.strip():
            yield parse_line(first + offset, line)


def parse_line(number: int, line: str) -> Record | Skipped:
    """The reference classification of one line of text."""
    try:
        doc = json.loads(line)
    except (json.JSONDecodeError, RecursionError):  # nested too deep for json to read
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


def canonical(raw: bytes, doc: dict[str, object]) -> bool:
    """Whether ``raw``, read by the fast path into the flat ``doc``, is byte for byte what
    ``json.dumps(doc, separators=(",", ":"))`` gives: compact, in ASCII with json's
    escapes (orjson writes DEL as it is, json escapes it), no name repeated."""
    return raw.isascii() and b"\x7f" not in raw and orjson.dumps(doc) == raw


def encode(record: Record, shift_ms: int) -> bytes:
    """The event as sent: the original JSON, with occurred_at moved when shifted, as
    ``json.dumps(doc, separators=(",", ":"))`` writes it (a line already so is sent as it
    is, and orjson writes a shifted one: the same bytes, faster)."""
    doc = record.doc
    fast = record.raw is not None and canonical(record.raw, doc)
    if not shift_ms:
        if fast and record.raw is not None:
            return record.raw
        return json.dumps(doc, separators=(",", ":")).encode()
    doc = {**doc, "occurred_at": format_ms(record.occurred_ms + shift_ms)}
    return orjson.dumps(doc) if fast else json.dumps(doc, separators=(",", ":")).encode()
